/** The HTTP platforms of the bench (Nest's express and fastify adapters). */
export type BenchPlatform = 'express' | 'fastify';

/** One compared setup. `route` is the path autocannon drives. */
export interface SetupInfo {
  id: SetupId;
  /** Label in the printed table. */
  label: string;
  route: '/public' | '/protected';
  /** Whether autocannon sends the bearer token. */
  token: boolean;
  platforms: readonly BenchPlatform[];
}

/**
 * A compared setup: `public` (our app's `@Public()` route), `ours-cache` (nestjs-a2a-auth, cache hits),
 * `ours-nocache` (`tokenCache.enabled: false`), `stock-passport` (@nestjs/passport `AuthGuard` + passport-jwt +
 * jwks-rsa `passportJwtSecret`), `auth0` (express-oauth2-jwt-bearer in a guard; express only).
 */
export type SetupId = 'public' | 'ours-cache' | 'ours-nocache' | 'stock-passport' | 'auth0';

/** The setups, in the order each run drives them, and the platforms each runs on. */
export const SETUPS: readonly SetupInfo[] = [
  { id: 'public', label: 'public route (no auth)', route: '/public', token: false, platforms: ['express', 'fastify'] },
  { id: 'ours-cache', label: 'nestjs-a2a-auth, cache hits', route: '/protected', token: true, platforms: ['express', 'fastify'] },
  { id: 'ours-nocache', label: 'nestjs-a2a-auth, cache off', route: '/protected', token: true, platforms: ['express', 'fastify'] },
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
}

/** The scope the protected route requires in our setups (the token grants it). */
export const BENCH_SCOPE = 'bench:read';
