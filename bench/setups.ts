/** The HTTP platforms of the bench (Nest's express and fastify adapters). */
export type BenchPlatform = 'express' | 'fastify';

/** One compared setup. `route` is the path autocannon drives. */
export interface SetupInfo {
  id: SetupId;
  /** Label in the printed table. */
  label: string;
  route: '/public' | '/protected';
  /** Whether autocannon sends the bearer token (`'distinct'`: a different valid token on every request, cycling). */
  token: boolean | 'distinct';
  platforms: readonly BenchPlatform[];
}

/**
 * A compared setup:
 * - `bare`: the same handler in a Nest app with no guard and no library at all (the baseline of every ratio);
 * - `floor`: a global guard that does nothing but set `request.user` and return true (the floor for any Nest guard);
 * - `public`: our app's `@Public()` route; `ours-cache`: nestjs-a2a-auth, cache hits; `ours-nocache`:
 *   `tokenCache.enabled: false`; `ours-offthread`: cache off, signatures checked on the thread pool
 *   (`verifyOffThread`); `ours-churn`: cache on, 20,000 distinct tokens against a 10,000-entry cache (every request a
 *   miss and an eviction);
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
  /** The local redis-server's URL, for `ours-limit-redis`. */
  redisUrl?: string;
}

/** The scope the protected route requires in our setups (the token grants it). */
export const BENCH_SCOPE = 'bench:read';
