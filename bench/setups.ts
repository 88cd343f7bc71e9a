import { createHash, sign } from 'node:crypto';
import type { TestKey } from '../test/fixtures/keys';

/** The HTTP platforms of the bench (Nest's express and fastify adapters). */
export type BenchPlatform = 'express' | 'fastify';

/** One compared setup. `route` is the path autocannon drives. */
export interface SetupInfo {
  id: SetupId;
  /** Label in the printed table. */
  label: string;
  route: '/public' | '/protected';
  /**
   * Whether autocannon sends the bearer token (`'distinct'`: a different valid token on every request, cycling;
   * `'dpop'`: the DPoP-bound token with the `DPoP` scheme and a fresh pre-minted proof on every request; `'padded'`:
   * the bearer token plus one of those proofs in a header the server never reads, so the request has the DPoP one's
   * size and autocannon does the same work per request).
   */
  token: boolean | 'distinct' | 'dpop' | 'padded';
  platforms: readonly BenchPlatform[];
}

/**
 * A compared setup:
 * - `bare`: the same handler in a Nest app with no guard and no library at all (the baseline of every ratio);
 * - `floor`: a global guard that does nothing but set `request.user` and return true (the floor for any Nest guard);
 * - `public`: our app's `@Public()` route; `ours-cache`: nestjs-a2a-auth, cache hits; `ours-nocache`:
 *   `tokenCache.enabled: false`; `ours-offthread`: cache off, signatures checked on the thread pool
 *   (`verifyOffThread`); `ours-churn`: cache on, 20,000 distinct tokens against a 10,000-entry cache (every request a
 *   miss and an eviction); `ours-dpop`: cache on, a DPoP-bound token (RFC 9449) with a fresh proof on every request
 *   (cache hit + one proof check); `ours-cache-padded`: the `ours-cache` server, sent requests of the DPoP one's size
 *   and made the same way (a bearer token and a fresh proof in an `x-bench-pad` header the server ignores): the
 *   control that separates what the proof check costs from what a larger request made per request costs;
 *   `ours-cache-proof`: the same padded requests to the `ours-cache` app plus a guard that checks the pad as a DPoP proof
 *   (`createDPoPChecker`): "a bearer token through the cache plus one proof verification", measured in the server;
 * - `stock-passport`: @nestjs/passport `AuthGuard` + passport-jwt + jwks-rsa `passportJwtSecret`;
 * - `auth0`: express-oauth2-jwt-bearer in a guard (express only);
 * - `ours-limit-memory` / `ours-limit-redis`: cache hits plus a per-client limit (`clientRateLimit`, set high enough
 *   never to refuse) counted in memory / in a local `redis-server` (started by the bench on 127.0.0.1).
 */
export type SetupId =
  | 'bare'
  | 'floor'
  | 'public'
  | 'ours-cache'
  | 'ours-nocache'
  | 'ours-offthread'
  | 'ours-churn'
  | 'ours-dpop'
  | 'ours-cache-padded'
  | 'ours-cache-proof'
  | 'stock-passport'
  | 'auth0'
  | 'ours-limit-memory'
  | 'ours-limit-redis';

/** The setups, in the order each run drives them, and the platforms each runs on. */
export const SETUPS: readonly SetupInfo[] = [
  { id: 'bare', label: 'bare Nest app, no guard', route: '/protected', token: true, platforms: ['express', 'fastify'] },
  { id: 'floor', label: 'do-nothing global guard (the floor)', route: '/protected', token: true, platforms: ['express', 'fastify'] },
  { id: 'public', label: 'nestjs-a2a-auth, @Public() route', route: '/public', token: false, platforms: ['express', 'fastify'] },
  { id: 'ours-cache', label: 'nestjs-a2a-auth, cache hits', route: '/protected', token: true, platforms: ['express', 'fastify'] },
  { id: 'ours-nocache', label: 'nestjs-a2a-auth, cache off', route: '/protected', token: true, platforms: ['express', 'fastify'] },
  { id: 'ours-offthread', label: 'nestjs-a2a-auth, cache off, verifyOffThread', route: '/protected', token: true, platforms: ['express', 'fastify'] },
  {
    id: 'ours-limit-memory',
    label: 'nestjs-a2a-auth, cache hits, per-client limit in memory',
    route: '/protected',
    token: true,
    platforms: ['express', 'fastify'],
  },
  {
    id: 'ours-limit-redis',
    label: 'nestjs-a2a-auth, cache hits, per-client limit in Redis',
    route: '/protected',
    token: true,
    platforms: ['express', 'fastify'],
  },
  { id: 'ours-churn', label: 'nestjs-a2a-auth, 20,000 distinct tokens', route: '/protected', token: 'distinct', platforms: ['express', 'fastify'] },
  { id: 'ours-dpop', label: 'nestjs-a2a-auth, DPoP, cache hits + a fresh proof', route: '/protected', token: 'dpop', platforms: ['express', 'fastify'] },
  {
    id: 'ours-cache-proof',
    label: 'nestjs-a2a-auth, cache hits (bearer) + one proof check in a guard',
    route: '/protected',
    token: 'padded',
    platforms: ['express', 'fastify'],
  },
  {
    id: 'ours-cache-padded',
    label: 'nestjs-a2a-auth, cache hits, requests padded to the DPoP size',
    route: '/protected',
    token: 'padded',
    platforms: ['express', 'fastify'],
  },
  { id: 'stock-passport', label: '@nestjs/passport AuthGuard + passport-jwt + jwks-rsa', route: '/protected', token: true, platforms: ['express', 'fastify'] },
  { id: 'auth0', label: 'express-oauth2-jwt-bearer in a guard', route: '/protected', token: true, platforms: ['express'] },
];

/** What the parent hands a server child (JSON in the BENCH_SERVER env variable). */
export interface ServerConfig {
  platform: BenchPlatform;
  setup: SetupId;
  /** Exact `iss` of the bench token. */
  issuer: string;
  /** `aud` of the bench token. */
  audience: string;
  /** The local JWKS server's URL (127.0.0.1). */
  jwksUri: string;
  /** `ours-dpop`: how many distinct proofs the parent pre-minted (the server's replay cache must hold them all). */
  dpopProofs?: number;
  /** `ours-cache-proof`: the DPoP-bound token the pads were minted for (their `ath`) and its `cnf.jkt`. */
  dpopToken?: string;
  dpopJkt?: string;
  /** The local redis-server's URL, for `ours-limit-redis`. */
  redisUrl?: string;
}

/**
 * The origin the `ours-dpop` proofs name in `htu` (the server's `dpop.publicOrigin`), so that one list of proofs fits
 * every server whatever its port.
 */
export const BENCH_DPOP_ORIGIN = 'http://bench.example';

/** The scope the protected route requires in our setups (the token grants it). */
export const BENCH_SCOPE = 'bench:read';

/** The micro benchmark line the DPoP target compares with. */
export const DPOP_PROOF_MICRO = 'DPoP proof check, ES256 (parse, thumbprint, cached key, signature, claims, ath, replay cache)';

/**
 * `count` distinct ES256 DPoP proofs (RFC 9449 §4.2) for `GET <BENCH_DPOP_ORIGIN>/protected` with the given token,
 * each with its own `jti` and `iat`, signed directly with node:crypto (about 30 µs each).
 */
export function mintDPoPProofs(key: TestKey, token: string, count: number, jtiPrefix = 'p'): string[] {
  const htu = `${BENCH_DPOP_ORIGIN}/protected`;
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const { kty, crv, x, y } = key.publicJwk as Record<string, string>;
  const h = b64({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } });
  const ath = createHash('sha256').update(token).digest('base64url');
  const now = Math.floor(Date.now() / 1000);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const input = `${h}.${b64({ jti: `${jtiPrefix}-${i}-${now}`, htm: 'GET', htu, iat: now - (i % 30), ath })}`;
    out.push(`${input}.${sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`);
  }
  return out;
}
