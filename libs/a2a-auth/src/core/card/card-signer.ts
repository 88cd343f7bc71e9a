import { createPrivateKey, type KeyObject } from 'node:crypto';
import { FlattenedSign, flattenedVerify, type JWSHeaderParameters } from 'jose';
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
 * Verifies a card's signatures against a public key: succeeds if any entry verifies over the JCS form.
 * @param getKey returns the public key for a protected header (`kid`, `jku`).
 * @throws Error when the card has no signature or none verifies.
 */
export async function verifyAgentCard(
  card: object,
  getKey: (header: JWSHeaderParameters) => Promise<KeyObject> | KeyObject,
  algorithms: string[] = ['ES256', 'RS256', 'PS256', 'EdDSA'],
): Promise<JWSHeaderParameters> {
  const sigs = (card as { signatures?: CardSignature[] }).signatures;
  if (!sigs?.length) throw new Error('card is not signed');
  const payload = Buffer.from(canonicalCardBytes(card)).toString('base64url');
  let last: unknown;
  for (const s of sigs) {
    try {
      const r = await flattenedVerify(
        { protected: s.protected, signature: s.signature, payload, header: s.header as JWSHeaderParameters | undefined },
        async (h) => getKey(h as JWSHeaderParameters),
        { algorithms },
      );
      return r.protectedHeader as JWSHeaderParameters;
    } catch (e) {
      last = e;
    }
  }
  throw new Error(`no card signature verifies: ${(last as Error)?.message ?? 'unknown'}`);
}
