import { createHash, createHmac, randomUUID, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { calculateJwkThumbprint } from 'jose';
import { generateTestKey, type TestKey } from './fixtures/keys';

// DPoP test material made by hand (never by the code under test): proof keys from the test key pool, proofs signed
// with node:crypto over hand-built JWS parts (so that malformed, `none`, HMAC and private-`jwk` proofs can be made),
// thumbprints from jose's RFC 7638 implementation.

/** A DPoP proof key: the pooled test key, its public JWK with only the key members, and its RFC 7638 thumbprint. */
export interface ProofKey {
  alg: string;
  key: TestKey;
  jwk: Record<string, unknown>;
  jkt: string;
}

/** A proof key for `alg` (ES256, PS256, RS256 or EdDSA), with its thumbprint computed by jose. */
export async function proofKey(alg = 'ES256'): Promise<ProofKey> {
  const key = generateTestKey(alg);
  const { kty, crv, x, y, n, e } = key.publicJwk as Record<string, string>;
  const jwk: Record<string, unknown> = Object.fromEntries(Object.entries({ kty, crv, x, y, n, e }).filter(([, v]) => v !== undefined));
  return { alg, key, jwk, jkt: await calculateJwkThumbprint(jwk as never, 'sha256') };
}

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** RFC 9449 §4.2 `ath`, computed independently of the library. */
export const ath = (token: string) => createHash('sha256').update(token).digest('base64url');

/** Options of {@link mintProof}. */
export interface ProofOptions {
  htm: string;
  htu: string;
  /** The access token for `ath`; omit for no `ath`. */
  token?: string;
  /** Seconds since the epoch. Default now. */
  iat?: number;
  jti?: string;
  nonce?: string;
  /** Header members to add or override (`undefined` removes one). */
  header?: Record<string, unknown>;
  /** Claims to add or override (`undefined` removes one). */
  claims?: Record<string, unknown>;
  /** Sign with this key instead of the proof key (the header still names the proof key). */
  signWith?: KeyObject;
  /** HMAC secret: sign as HS256. */
  hmacSecret?: Buffer;
}

function signature(alg: string, input: string, key: KeyObject): Buffer {
  const data = Buffer.from(input);
  if (alg === 'EdDSA') return cryptoSign(null, data, key);
  if (alg.startsWith('ES')) return cryptoSign(`sha${alg.slice(2)}`, data, { key, dsaEncoding: 'ieee-p1363' });
  if (alg.startsWith('PS')) return cryptoSign(`sha${alg.slice(2)}`, data, { key, padding: 6, saltLength: 32 });
  return cryptoSign(`sha${alg.slice(2)}`, data, key);
}

/** A DPoP proof JWT (RFC 9449 §4.2) for `k`, with every member overridable. */
export function mintProof(k: ProofKey, o: ProofOptions): string {
  const header: Record<string, unknown> = { typ: 'dpop+jwt', alg: o.hmacSecret ? 'HS256' : k.alg, jwk: k.jwk, ...o.header };
  const claims: Record<string, unknown> = {
    jti: o.jti ?? randomUUID(),
    htm: o.htm,
    htu: o.htu,
    iat: o.iat ?? Math.floor(Date.now() / 1000),
    ...(o.token !== undefined ? { ath: ath(o.token) } : {}),
    ...(o.nonce !== undefined ? { nonce: o.nonce } : {}),
    ...o.claims,
  };
  for (const m of [header, claims]) for (const key of Object.keys(m)) if (m[key] === undefined) delete m[key];
  const input = `${b64(header)}.${b64(claims)}`;
  if (header.alg === 'none') return `${input}.`;
  if (o.hmacSecret) return `${input}.${createHmac('sha256', o.hmacSecret).update(input).digest('base64url')}`;
  return `${input}.${signature(k.alg, input, o.signWith ?? k.key.privateKey).toString('base64url')}`;
}

/** An HTTP answer with the headers the DPoP tests look at. */
export interface Answer {
  status: number;
  wwwAuthenticate?: string;
  dpopNonce?: string;
  retryAfter?: string;
  body: unknown;
}

/** Sends one request with raw header pairs (a header may repeat), to 127.0.0.1. */
export function send(baseUrl: string, method: string, path: string, headers: Array<[string, string]>, body?: unknown): Promise<Answer> {
  const u = new URL(baseUrl);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const flat: string[] = ['Host', u.host];
  for (const [k, v] of headers) flat.push(k, v);
  if (payload) flat.push('Content-Type', 'application/json', 'Content-Length', String(payload.length), 'A2A-Version', '1.0');
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, method, headers: flat as never, agent: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        const h = (n: string) => res.headers[n] as string | undefined;
        resolve({
          status: res.statusCode ?? 0,
          wwwAuthenticate: h('www-authenticate'),
          dpopNonce: h('dpop-nonce'),
          retryAfter: h('retry-after'),
          body: parsed,
        });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(payload);
  });
}
