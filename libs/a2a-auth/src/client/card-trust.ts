import { createPublicKey, type KeyObject } from 'node:crypto';
import { createLocalJWKSet, type CryptoKey, type JSONWebKeySet, type JWSHeaderParameters } from 'jose';
import { CardVerificationError, verifyAgentCard, type CardVerificationFailure } from '../core/card/card-signer';
import { fetchJson } from '../core/fetch-json';
import { AgentCardDiscoveryError, ClientCredentialsError } from './errors';
import { isLoopback } from './token-provider';

/**
 * The trust root for Agent Card signatures (A2A v1.0 §8.4.3): keys the caller controls. The card's own `jku` is never
 * fetched: the signer chose it, so a forger would name a JWKS holding its own key (a2aproject/A2A#2096).
 * Give at least one of `publicKeys`, `jwks`, `jwksUrl`; they are tried in that order for a signature's `kid`.
 */
export interface AgentCardTrust {
  /** Public keys by `kid`: a `KeyObject` or an SPKI PEM string. */
  publicKeys?: Readonly<Record<string, KeyObject | string>>;
  /** A JWK Set (RFC 7517 §5) you hold, e.g. from configuration. Keys are chosen by `kid`, `alg`, `use` and `key_ops`. */
  jwks?: JSONWebKeySet;
  /**
   * The URL of a JWK Set you choose (`https:`, or `http:` on loopback). Fetched at most once per verification, only when a
   * signature's key is not in `publicKeys` / `jwks`; total deadline `jwksTimeoutMs`, 1 MiB cap, redirects refused.
   */
  jwksUrl?: string;
  /** Deadline of the `jwksUrl` fetch, milliseconds. Default 5,000. */
  jwksTimeoutMs?: number;
  /** JWS algorithms accepted (RFC 7518). Default `['ES256', 'RS256', 'PS256', 'EdDSA']`. */
  algorithms?: readonly string[];
}

/** What a verified card was signed with (the verified JWS protected header's `alg` and `kid`). */
export interface VerifiedCardSignature {
  /** JWS `alg`. */
  alg: string;
  /** JWS `kid`, when the header has one. */
  kid?: string;
}

const CODES: Record<CardVerificationFailure, AgentCardDiscoveryError['code']> = {
  unsigned: 'unsigned_card',
  malformed_signature: 'invalid_card_signature',
  unknown_key: 'unknown_card_key',
  keys_unavailable: 'card_keys_unavailable',
  signature_mismatch: 'card_signature_mismatch',
};

/**
 * Verifies an Agent Card's JWS signatures (A2A v1.0 §8.4: over the RFC 8785 canonical card without `signatures`)
 * against a trust root the caller controls. At least one signature must verify with a key of `trust`.
 * `discoverAgentAuth` calls it before it reads anything from the card when `DiscoveryOptions.cardTrust` is set; call it
 * yourself for a card you obtained otherwise (e.g. pass it to the SDK's `client.getAgentCard(options, verify)`).
 *
 * @param cardUrl where the card came from (for the error messages).
 * @throws AgentCardDiscoveryError `unsigned_card`, `invalid_card_signature`, `unknown_card_key`,
 *   `card_signature_mismatch`, `card_keys_unavailable`.
 * @throws ClientCredentialsError for a trust root with no keys or a `jwksUrl` that is not https (or loopback http).
 */
export async function verifyAgentCardSignature(card: object, trust: AgentCardTrust, cardUrl?: string): Promise<VerifiedCardSignature> {
  return cardVerifier(trust)(card, cardUrl);
}

/**
 * {@link verifyAgentCardSignature} with the trust root checked once, up front (before any card is fetched).
 * @throws ClientCredentialsError for a trust root with no keys, an unusable key, or a `jwksUrl` that is not https (or loopback http).
 */
export function cardVerifier(trust: AgentCardTrust): (card: object, cardUrl?: string) => Promise<VerifiedCardSignature> {
  const getKey = cardKeyResolver(trust);
  const algorithms = [...(trust.algorithms ?? ['ES256', 'RS256', 'PS256', 'EdDSA'])];
  return async (card, cardUrl) => {
    try {
      const h = await verifyAgentCard(card, getKey(), algorithms);
      return { alg: String(h.alg), ...(typeof h.kid === 'string' ? { kid: h.kid } : {}) };
    } catch (e) {
      const reason: CardVerificationFailure = e instanceof CardVerificationError ? e.reason : 'malformed_signature';
      throw new AgentCardDiscoveryError(CODES[reason], `agent card${cardUrl ? ` ${cardUrl}` : ''}: ${(e as Error)?.message ?? 'signature check failed'}`);
    }
  };
}

/**
 * The key lookup for {@link verifyAgentCard}: `publicKeys`, then `jwks`, then `jwksUrl`. Each call gives the lookup for
 * one verification, which fetches `jwksUrl` at most once and only when needed (a rotated key is seen by the next one).
 */
function cardKeyResolver(trust: AgentCardTrust): () => (h: JWSHeaderParameters) => Promise<KeyObject | CryptoKey> {
  const pinned = new Map<string, KeyObject>();
  for (const [kid, k] of Object.entries(trust.publicKeys ?? {})) {
    try {
      pinned.set(kid, typeof k === 'string' ? createPublicKey(k) : k.type === 'private' ? createPublicKey(k) : k);
    } catch {
      throw new ClientCredentialsError(`cardTrust.publicKeys[${JSON.stringify(kid)}] is not a public key`);
    }
  }
  let local: ReturnType<typeof createLocalJWKSet> | undefined;
  try {
    local = trust.jwks ? createLocalJWKSet(trust.jwks) : undefined;
  } catch {
    throw new ClientCredentialsError('cardTrust.jwks is not a JWK Set');
  }
  const url = trust.jwksUrl;
  if (url !== undefined) {
    let u: URL | undefined;
    try {
      u = new URL(url);
    } catch {
      u = undefined;
    }
    if (!u || !(u.protocol === 'https:' || (u.protocol === 'http:' && isLoopback(u.hostname)))) {
      throw new ClientCredentialsError('cardTrust.jwksUrl must be an https URL (http only on loopback)');
    }
  }
  if (!pinned.size && !local && url === undefined) throw new ClientCredentialsError('cardTrust needs publicKeys, jwks or jwksUrl');
  const timeoutMs = trust.jwksTimeoutMs ?? 5000;

  return () => {
    let remote: Promise<ReturnType<typeof createLocalJWKSet>> | undefined;
    return async (h) => {
      const alg = String(h.alg);
      const kid = typeof h.kid === 'string' ? h.kid : undefined;
      const key = kid !== undefined ? pinned.get(kid) : undefined;
      if (key) {
        if (!keyFitsAlg(key, alg)) throw new CardVerificationError('unknown_key', `the trusted key ${JSON.stringify(kid)} is not a key for ${alg}`);
        return key;
      }
      const pick = async (set: ReturnType<typeof createLocalJWKSet>) => {
        try {
          return await set(h);
        } catch {
          return undefined; // ERR_JWKS_NO_MATCHING_KEY, or ERR_JWKS_MULTIPLE_MATCHING_KEYS (ambiguous without a kid)
        }
      };
      const fromLocal = local && (await pick(local));
      if (fromLocal) return fromLocal;
      if (url !== undefined) {
        remote ??= fetchJson(url, timeoutMs).then(
          (doc) => {
            try {
              return createLocalJWKSet(doc as JSONWebKeySet);
            } catch {
              throw new CardVerificationError('keys_unavailable', `the trusted JWKS ${url} is not a JWK Set`);
            }
          },
          (e: unknown) => {
            throw new CardVerificationError('keys_unavailable', `the trusted JWKS ${url} could not be fetched: ${(e as Error)?.message ?? 'error'}`);
          },
        );
        const fromRemote = await pick(await remote);
        if (fromRemote) return fromRemote;
      }
      throw new CardVerificationError('unknown_key', `no trusted key for kid ${JSON.stringify(kid ?? null)} and alg ${JSON.stringify(alg)}`);
    };
  };
}

/** Whether a public key can verify `alg` (RFC 7518 §3.1; EdDSA per RFC 8037). */
function keyFitsAlg(key: KeyObject, alg: string): boolean {
  const t = key.asymmetricKeyType;
  if (/^RS\d{3}$/.test(alg)) return t === 'rsa';
  if (/^PS\d{3}$/.test(alg)) return t === 'rsa' || t === 'rsa-pss';
  const curve = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' }[alg];
  if (curve) return t === 'ec' && key.asymmetricKeyDetails?.namedCurve === curve;
  if (alg === 'EdDSA' || alg === 'Ed25519') return t === 'ed25519' || t === 'ed448';
  return false;
}
