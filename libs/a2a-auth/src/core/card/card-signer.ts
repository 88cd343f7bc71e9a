import { createPrivateKey, type KeyObject } from 'node:crypto';
import { FlattenedSign, flattenedVerify, type CryptoKey, type JWSHeaderParameters } from 'jose';
// RFC 8785 (JCS) by the RFC's co-author. The 2.x line is CommonJS and runs on Node 20; 3.x+ is ESM-only and 5.x declares Node >= 22.
import canonicalize from 'canonicalize';
import type { CardSigningOptions } from '../options';

/** A JWS signature entry of an Agent Card (A2A v1.0 `AgentCardSignature`; flattened JWS with detached payload). */
export interface CardSignature {
  protected: string;
  signature: string;
  header?: Record<string, unknown>;
}

/**
 * RFC 8785 (JCS) canonical form of a card without its `signatures` member: the bytes that are signed.
 * @throws Error if the card cannot be canonicalized (e.g. contains a non-finite number).
 */
export function canonicalCardBytes(card: object): Uint8Array {
  const { signatures: _drop, ...rest } = card as { signatures?: unknown };
  const s = canonicalize(rest);
  if (s === undefined) throw new Error('card cannot be canonicalized');
  return new TextEncoder().encode(s);
}

/**
 * Signs a served card (A2A v1.0 §8.4): a JWS (RFC 7515) over the JCS canonical card without `signatures`,
 * protected header `{ alg, kid, typ: "JOSE", jku? }`, payload detached.
 * Sign the wire JSON you serve, never an SDK object.
 *
 * @returns the card with `signatures: [entry]` appended (a new object).
 * @throws Error for an unusable key or algorithm.
 */
export async function signAgentCard<T extends object>(card: T, o: CardSigningOptions): Promise<T & { signatures: CardSignature[] }> {
  const key: KeyObject = typeof o.privateKey === 'string' ? createPrivateKey(o.privateKey) : o.privateKey;
  const header: JWSHeaderParameters = { alg: o.alg ?? 'ES256', kid: o.kid, typ: 'JOSE', ...(o.jku ? { jku: o.jku } : {}) };
  const jws = await new FlattenedSign(canonicalCardBytes(card)).setProtectedHeader(header).sign(key);
  const entry: CardSignature = { protected: jws.protected!, signature: jws.signature };
  const prior = ((card as { signatures?: CardSignature[] }).signatures ?? []).slice();
  return { ...card, signatures: [...prior, entry] } as T & { signatures: CardSignature[] };
}

/**
 * Why a card's signatures did not verify (A2A v1.0 §8.4.3), from the most to the least telling:
 * - `signature_mismatch`: a trusted key was found but the signature does not verify over the canonical card (the
 *   card was changed after signing, or signed by another key under that `kid`);
 * - `keys_unavailable`: the verification keys could not be obtained (set by a `getKey` that throws
 *   {@link CardVerificationError} with this reason);
 * - `unknown_key`: no trusted key for the entry's `kid` / `alg`;
 * - `malformed_signature`: the entry is not a usable flattened JWS (bad encoding, `alg` not allowed, unknown `crit`…);
 * - `unsigned`: the card has no `signatures`.
 */
export type CardVerificationFailure = 'unsigned' | 'malformed_signature' | 'unknown_key' | 'keys_unavailable' | 'signature_mismatch';

/** A card whose signatures do not verify; `reason` says why (see {@link CardVerificationFailure}). */
export class CardVerificationError extends Error {
  constructor(
    /** Why the card did not verify. */
    readonly reason: CardVerificationFailure,
    message: string,
  ) {
    super(message);
    this.name = 'CardVerificationError';
  }
}

/** At most this many `signatures` entries are tried (each may cost a key lookup and a public-key operation). */
export const MAX_CARD_SIGNATURES = 16;

// When no entry verifies, the most telling failure is reported.
const FAILURE_RANK: Record<CardVerificationFailure, number> = {
  unsigned: 0,
  malformed_signature: 1,
  unknown_key: 2,
  keys_unavailable: 3,
  signature_mismatch: 4,
};

/**
 * Verifies a card's signatures against a public key: succeeds if any entry verifies over the JCS form.
 * Only the first {@link MAX_CARD_SIGNATURES} entries are tried.
 * @param getKey returns the public key for a protected header (`kid`, `jku`). It picks the trust root: never fetch
 *   from the header's `jku` alone, the signer chose it. Throw {@link CardVerificationError} `unknown_key` or
 *   `keys_unavailable` to say why no key is given.
 * @throws CardVerificationError when the card has no signature (`unsigned`) or none verifies (the most telling reason).
 */
export async function verifyAgentCard(
  card: object,
  getKey: (header: JWSHeaderParameters) => Promise<KeyObject | CryptoKey> | KeyObject | CryptoKey,
  algorithms: string[] = ['ES256', 'RS256', 'PS256', 'EdDSA'],
): Promise<JWSHeaderParameters> {
  const sigs = (card as { signatures?: unknown }).signatures;
  if (sigs === undefined || (Array.isArray(sigs) && sigs.length === 0)) throw new CardVerificationError('unsigned', 'card is not signed');
  if (!Array.isArray(sigs)) throw new CardVerificationError('malformed_signature', 'no card signature verifies: signatures is not an array');
  const payload = Buffer.from(canonicalCardBytes(card)).toString('base64url');
  let worst: CardVerificationError | undefined;
  for (const s of sigs.slice(0, MAX_CARD_SIGNATURES) as Array<Partial<CardSignature> | null>) {
    let failure: CardVerificationError;
    try {
      if (!s || typeof s !== 'object' || typeof s.protected !== 'string' || typeof s.signature !== 'string') {
        throw new CardVerificationError('malformed_signature', 'a signatures entry is not a flattened JWS');
      }
      const r = await flattenedVerify(
        { protected: s.protected, signature: s.signature, payload, header: s.header as JWSHeaderParameters | undefined },
        async (h) => getKey(h as JWSHeaderParameters),
        { algorithms },
      );
      return r.protectedHeader as JWSHeaderParameters;
    } catch (e) {
      const message = (e as Error)?.message ?? 'unknown';
      if (e instanceof CardVerificationError) failure = e;
      else if ((e as { code?: string })?.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') failure = new CardVerificationError('signature_mismatch', message);
      else failure = new CardVerificationError('malformed_signature', message);
    }
    if (!worst || FAILURE_RANK[failure.reason] > FAILURE_RANK[worst.reason]) worst = failure;
  }
  throw new CardVerificationError(worst?.reason ?? 'malformed_signature', `no card signature verifies: ${worst?.message ?? 'unknown'}`);
}
