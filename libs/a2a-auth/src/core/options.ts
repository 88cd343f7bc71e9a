import type { KeyObject } from 'node:crypto';
import type { ClaimValidator } from './claims';
import type { AuditSink } from './audit-event';
import { DEFAULT_SCOPE_CLAIMS } from './scopes';
import { DEFAULT_MAX_TOKEN_LENGTH } from './bearer';
import type { IntrospectionOptions, ResolvedIntrospectionOptions } from './introspection';
import { resolveClientAuth } from './client-auth';
import type { DPoPReplayCache } from './replay-cache';
import { resolveDelegation, type DelegationOptions, type DelegationPolicy } from './delegation';
import { defaultKeyPrefix } from './store';
import type { A2ACaller } from './caller';
import type { AgentCardJson } from './agent-card.types';

/** JWS algorithms this library can verify with a JWKS (RFC 7518 §3.1, RFC 8037). HMAC and `none` are never allowed. */
export const SUPPORTED_ALGORITHMS = Object.freeze(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const);
/** One of {@link SUPPORTED_ALGORITHMS}. */
export type SupportedAlgorithm = (typeof SUPPORTED_ALGORITHMS)[number];

/** One trusted issuer with its own key set and, optionally, its own audience. */
export interface IssuerOptions {
  /** Exact `iss` value (RFC 7519 §4.1.1); compared by string equality, so a trailing slash matters. */
  issuer: string;
  /** JWKS URL. Default: `jwks_uri` from the issuer's OIDC Discovery / RFC 8414 metadata. */
  jwksUri?: string;
  /** Audience(s) this issuer's tokens must name. Default: the module-level `audience`. */
  audience?: string | string[];
}

/** Protocol bindings of the A2A v1.0 spec (`AgentInterface.protocolBinding`). */
export type ProtocolBinding = 'JSONRPC' | 'HTTP+JSON' | 'GRPC';

/** One entry of the card's `supportedInterfaces` (A2A v1.0 `AgentInterface`). */
export interface AgentInterfaceOptions {
  /** Absolute URL, or a path resolved against `card.url`. */
  url: string;
  /** Transport binding. */
  protocolBinding: ProtocolBinding;
  /** A2A protocol version. Default `'1.0'`. */
  protocolVersion?: string;
}

/** Card-serving rate limit (per client address), applied with @nestjs/throttler. */
export interface CardThrottleOptions {
  /** Requests allowed per window. Default 60. */
  limit?: number;
  /** Window length in seconds. Default 60. */
  ttl?: number;
  /**
   * Number of trusted reverse proxies in front of the agent. 0 (default): the client is the socket peer.
   * N: the client is the address N hops from the right of `X-Forwarded-For` (never the left-most entry).
   */
  trustedProxyHops?: number;
  /**
   * IPv6 clients are limited per network prefix of this many bits, not per address: one host commonly holds a whole
   * /64 and can rotate through it. Default 64; an integer from 1 to 128 (128: per address). IPv4-mapped IPv6 addresses
   * count as their IPv4 address.
   */
  ipv6Prefix?: number;
}

/** Signing of the Agent Card (A2A v1.0 §8.4): a JWS over the RFC 8785 canonical card. */
export interface CardSigningOptions {
  /** Private key (PEM string or `KeyObject`). Load it from the environment or a secret store, never from source. */
  privateKey: string | KeyObject;
  /** JWS `alg`. Default `'ES256'`. */
  alg?: string;
  /** JWS `kid` (required: verifiers pick the key by it). */
  kid: string;
  /** Optional `jku`: URL of the JWKS holding the public key. */
  jku?: string;
}

/** Agent Card fields and serving options. */
export interface CardOptions {
  /** `AgentCard.name`. */
  name: string;
  /** `AgentCard.description`. */
  description: string;
  /** `AgentCard.version` (the agent's own version). Default `'1.0.0'`. */
  version?: string;
  /** Public base URL of the agent, e.g. `https://agents.example.com/expenses`. */
  url: string;
  /** `AgentCard.provider`. */
  provider?: { organization: string; url: string };
  /** `AgentCard.documentationUrl`. */
  documentationUrl?: string;
  /** `AgentCard.iconUrl`. */
  iconUrl?: string;
  /**
   * `AgentCard.supportedInterfaces`: the A2A bindings this app serves (required, so that the card never advertises an
   * interface the app does not serve; each is usually a controller marked `@A2AEndpoint()`). The first is the preferred
   * one (the v0.3 view's `url` and `preferredTransport`). `[]` for an app that serves no A2A binding yet: the card then
   * lists none (A2A clients cannot call it) and a warning is logged at boot.
   */
  interfaces: AgentInterfaceOptions[];
  /**
   * `AgentCard.capabilities`. Defaults: `streaming` false, `pushNotifications` false, no `extensions`. `extensions` are
   * A2A `AgentExtension`s (`uri`, `description`, `required` default false, `params`), e.g. the library's in-task
   * authorization extension `IN_TASK_AUTH_EXTENSION_URI` for an agent whose executor calls `requireScopes`.
   */
  capabilities?: { streaming?: boolean; pushNotifications?: boolean; extensions?: AgentExtensionOptions[] };
  /** Default `['text/plain', 'application/json']`. */
  defaultInputModes?: string[];
  /** Default `['text/plain', 'application/json']`. */
  defaultOutputModes?: string[];
  /**
   * Serve an authenticated extended card (`capabilities.extendedAgentCard`, A2A v1.0 §13.3). Default false. Each caller
   * sees the skills that are not `extendedOnly` plus the `extendedOnly` skills whose scopes its token grants.
   */
  extendedCard?: boolean;
  /**
   * Changes one caller's extended card further (A2A v1.0 §13.3: content "based on the authenticated client's identity
   * or authorization level"), on `GET /extendedAgentCard` and A2A `GetExtendedAgentCard` alike. Called on every fetch
   * with the verified caller and a copy of its v1.0 card (wire JSON, unsigned, already filtered by scopes); return the
   * card to serve (a new object or the mutated copy). The result must pass {@link checkAgentCard} (the `--check` rules);
   * it is then signed when `signing` is set and its v0.3 view derived. A callback that throws, or returns an invalid
   * card, answers HTTP 500 A2A `INTERNAL` (JSON-RPC `-32603`) with a fixed message, and is logged (reason only, no token).
   * Requires `extendedCard: true`. Default: none (the scope-filtered card as built).
   */
  extendedCardFor?: (caller: A2ACaller, card: AgentCardJson) => AgentCardJson | Promise<AgentCardJson>;
  /** `Cache-Control: public, max-age=` in seconds. Default 300. */
  cacheMaxAge?: number;
  /** Which view `GET /.well-known/agent-card.json` serves without an `A2A-Version` header. Default `'1.0'`. */
  defaultVersion?: '1.0' | '0.3';
  /** Also serve the legacy `/.well-known/agent.json`. Default true. */
  legacyPath?: boolean;
  /** Rate limit for the card and metadata endpoints. */
  throttle?: CardThrottleOptions;
  /** Sign the card (A2A §8.4). Default: unsigned. */
  signing?: CardSigningOptions;
  /** Name of the OAuth2 entry in `securitySchemes`. Default `'oauth2'`. */
  securitySchemeName?: string;
  /** Also advertise an `httpAuthSecurityScheme` (Bearer, JWT) named `'bearer'`. Default false. */
  advertiseBearerScheme?: boolean;
  /** Also advertise an `openIdConnectSecurityScheme` with this discovery URL. */
  openIdConnectUrl?: string;
}

/** mTLS + OAuth2 (RFC 8705) options. */
export interface MtlsOptions {
  /**
   * Require certificate-bound tokens: the token's `cnf["x5t#S256"]` (RFC 8705 §3.1) must equal the
   * SHA-256 thumbprint of the TLS client certificate. Default true when `mtls` is set.
   */
  requireBoundTokens?: boolean;
  /** Advertise an `mtlsSecurityScheme` in the card, required together with OAuth2. Default true. */
  advertise?: boolean;
  /** Description for the card's mTLS scheme. */
  description?: string;
}

/**
 * Whether a route accepts DPoP-bound tokens (RFC 9449): `'off'` (Bearer only; the `DPoP` scheme is refused),
 * `'allowed'` (Bearer or DPoP), `'required'` (DPoP only; a Bearer token is refused).
 */
export type DPoPMode = 'off' | 'allowed' | 'required';

/** Default DPoP proof algorithms: the asymmetric ones DPoP clients use (RFC 9449 §5.1's ES256 first). */
export const DEFAULT_DPOP_ALGORITHMS: readonly SupportedAlgorithm[] = Object.freeze(['ES256', 'PS256', 'RS256', 'EdDSA'] as const);

/** Stateless server-provided nonces (RFC 9449 §9): an HMAC of the time window, so no state is shared between instances. */
export interface DPoPNonceOptions {
  /** HMAC key, at least 32 bytes (string as UTF-8, or bytes). Share it between the instances behind one resource. Never from source. */
  secret: string | Buffer;
  /** Length of a nonce window in seconds; a nonce of the current or the previous window is accepted. Default 300. */
  rotateSeconds?: number;
}

/** An A2A `AgentExtension` declared in the card's `capabilities.extensions` (A2A v1.0 §4.4.4). */
export interface AgentExtensionOptions {
  /** The extension's URI. */
  uri: string;
  /** What the agent uses it for. */
  description?: string;
  /** The client must support it. Default false. */
  required?: boolean;
  /** Extension parameters (JSON). */
  params?: Record<string, unknown>;
}

/** DPoP (RFC 9449) at the resource server. */
export interface DPoPOptions {
  /** Module-wide mode; `@DPoP(mode)` overrides it per controller or handler. Default `'allowed'` in this object form. */
  mode?: DPoPMode;
  /** Allowed proof `alg` values, a subset of {@link SUPPORTED_ALGORITHMS} (never `none` or HMAC). Default {@link DEFAULT_DPOP_ALGORITHMS}. */
  algorithms?: string[];
  /** How old a proof's `iat` may be, seconds (plus `clockTolerance` either way). Default 60. */
  iatWindow?: number;
  /** Most proofs the in-memory replay cache remembers (each for `iatWindow` + 2 × `clockTolerance` seconds). Default 100,000. */
  maxReplayEntries?: number;
  /**
   * A replay cache of your own (e.g. one store for several instances). Default: the `store` when it is Redis
   * (`SharedStoreReplayCache`), else in memory, per process.
   */
  replayCache?: DPoPReplayCache;
  /** Require server-provided nonces (RFC 9449 §9). Default: none. */
  nonce?: DPoPNonceOptions;
  /**
   * The origin (`https://agents.example.com`) that clients address, used for the proof's `htu`. Default: from the request
   * (TLS or not, and the `Host` header; with `card.throttle.trustedProxyHops` > 0, `X-Forwarded-Proto` and
   * `X-Forwarded-Host` as set by the trusted proxies).
   */
  publicOrigin?: string;
}

/** Verified-token cache options. */
export interface TokenCacheOptions {
  /** Turn the cache on or off. Default true. */
  enabled?: boolean;
  /** Maximum entries (LRU). Default 10,000 (about 1.1 KiB of heap each, measured: docs/performance.md). */
  maxEntries?: number;
  /** Upper bound on an entry's lifetime, seconds. Default 300. Entries also end at `exp` and at `iat + maxTokenAge`. */
  maxTtl?: number;
}

/** Audit options. */
export interface AuditOptions {
  /** Emit events for successful decisions too. Default true. */
  successes?: boolean;
  /** Most failure lines the default sink writes per second before it summarises. Default 20. */
  failureLogRatePerSecond?: number;
}

/**
 * Where shared state lives (rate-limit counters for the card and per client; later replay and introspection caches).
 * Unset: in this process's memory, so several instances each count on their own.
 */
export interface StoreOptions {
  /**
   * Redis (through the optional peer `ioredis`, loaded only then): `{ url }` (e.g. `redis://127.0.0.1:6379/0`; the
   * module opens and closes the connection) or `{ client }` (your ioredis `Redis` instance; you close it).
   */
  redis?: { url: string } | { client: unknown };
  /** Prefix of every key, so that several agents can share one Redis. Default `a2a:<host><path>:` of `card.url`, else of `resource`, else `a2a:<audiences>:` (sorted, joined with `,`). */
  keyPrefix?: string;
  /** Longest wait for one store operation, milliseconds (at most 2^31 − 1, a Node timer's limit). Default 200. Past it the operation counts as failed (rate limits then let the request through). */
  timeoutMs?: number;
}

/** A per-client request limit (A2A v1.0 §13.4): at most `limit` requests per `ttl` seconds per verified client. */
export interface ClientRateLimitOptions {
  /** Requests allowed per window (a positive integer). */
  limit: number;
  /** Window length in seconds (positive). */
  ttl: number;
}

/**
 * Options for {@link A2AAuthModule.forRoot} / `forRootAsync`.
 * Secrets (none are needed by the resource server itself) must come from the environment or config.
 */
export interface A2AAuthModuleOptions {
  /** Trusted issuer(s): a string, a list, or per-issuer objects. Required, non-empty. Exact match on `iss`. */
  issuer: string | Array<string | IssuerOptions>;
  /** Audience(s) (RFC 7519 §4.1.3): the token's `aud` must contain one. Required, non-empty. */
  audience: string | string[];
  /** JWKS URL, for a single issuer. Default: discovered from the issuer's metadata. */
  jwksUri?: string;
  /** Allowed JWS algorithms. Default `['RS256']`. Must be a subset of {@link SUPPORTED_ALGORITHMS}. */
  algorithms?: string[];
  /** Clock skew tolerance, seconds. Default 5. */
  clockTolerance?: number;
  /** Maximum token age in seconds since `iat` (short-lived-token policy). Default: none. */
  maxTokenAge?: number;
  /** RFC 9068 strict profile. Default false. */
  strict?: boolean;
  /** Claims that carry scopes. Default `['scope', 'scp']`. Add `'permissions'` for Auth0 RBAC. */
  scopeClaims?: string[];
  /** Extra claim checks; a failure is 401 `claim_validation_failed`. */
  claimValidators?: ClaimValidator[];
  /** The scope catalog: scope name → description, advertised in the card and RFC 9728 metadata. */
  scopes?: Record<string, string>;
  /** OAuth 2.0 token endpoint advertised in the card's client-credentials flow (RFC 6749 §4.4). */
  tokenUrl?: string;
  /** Authorization server metadata URL for the card's `oauth2MetadataUrl` (RFC 8414). Default: derived from the first issuer. */
  oauth2MetadataUrl?: string;
  /** RFC 9728 `resource` identifier. Default: `card.url`, else the first audience that is an absolute URL; without one, no metadata is served and challenges carry no `resource_metadata`. */
  resource?: string;
  /** Realm in `WWW-Authenticate`. Default: the card name, else `'a2a'`. */
  realm?: string;
  /** Card fields and serving. */
  card?: CardOptions;
  /** JWKS fetch deadline, seconds. Default 5. */
  jwksTimeout?: number;
  /** Minimum seconds between unknown-`kid` refetches (shared). Default 30. */
  jwksCooldown?: number;
  /** Key set refresh age, seconds. Default 600. */
  jwksCacheMaxAge?: number;
  /** Accept RFC 6750 §2.3 `?access_token=`. Default false. */
  allowQueryToken?: boolean;
  /** Largest accepted token, characters. Default 8192. */
  maxTokenLength?: number;
  /** Custom audit sink (e.g. to ship events to a SIEM). Default: {@link LoggerAuditSink} (one JSON line per event). */
  auditSink?: AuditSink;
  /** Fail the boot when a `@RequireScopes` scope is missing from `scopes`. Default `'error'`. */
  unknownScopePolicy?: 'error' | 'warn';
  /** Verified-token cache. */
  tokenCache?: TokenCacheOptions;
  /**
   * Check token signatures on libuv's thread pool (Node's asynchronous `crypto.verify`) instead of on the event loop.
   * Default false: on the measured 2-core machine the thread-pool hop cost more CPU per request than it freed (express
   * served 11 % fewer requests per second with it); see docs/performance.md.
   */
  verifyOffThread?: boolean;
  /** Audit events. */
  audit?: AuditOptions;
  /** mTLS + OAuth2 for internal agents (RFC 8705). */
  mtls?: MtlsOptions;
  /**
   * Accept opaque access tokens by asking the authorization server (RFC 7662 token introspection). A token that is not
   * three dot-separated segments goes to the endpoint; JWTs are still verified locally. Default off: such a token is
   * 401 `malformed_token`.
   */
  introspection?: IntrospectionOptions;
  /** DPoP-bound tokens (RFC 9449): a mode, or the object form with the proof settings. Default `'off'`. */
  dpop?: DPoPMode | DPoPOptions;
  /**
   * Delegated tokens (RFC 8693 §4.1 `act` claim), module-wide; `@Delegation()` overrides it per route or skill.
   * Default: refused (`accept: false`, `maxChainLength` 2, any actor).
   */
  delegation?: DelegationOptions;
  /** Shared state: in memory (default) or Redis. */
  store?: StoreOptions;
  /**
   * Per-client limit on every authenticated request (the client is the verified `client_id`, else `azp`, else `sub`),
   * answered with 429 and `Retry-After` (RFC 6585 §4). Default: off. `@ClientRateLimit()` adds a limit per route.
   */
  clientRateLimit?: ClientRateLimitOptions;
}

/** {@link DPoPOptions} after defaults and validation. */
export interface ResolvedDPoPOptions {
  mode: DPoPMode;
  algorithms: SupportedAlgorithm[];
  /** Seconds. */
  iatWindow: number;
  maxReplayEntries: number;
  replayCache?: DPoPReplayCache;
  nonce?: { secret: Buffer; rotateSeconds: number };
  /** Normalised origin, without a trailing slash. */
  publicOrigin?: string;
  /** Trusted reverse proxies in front (from `card.throttle.trustedProxyHops`). */
  trustedProxyHops: number;
}

/** Options after defaults and validation. */
export interface ResolvedOptions {
  issuers: Array<{ issuer: string; jwksUri?: string; audience: string[] }>;
  issuerNames: string[];
  audience: string[];
  algorithms: SupportedAlgorithm[];
  clockTolerance: number;
  maxTokenAge?: number;
  strict: boolean;
  scopeClaims: string[];
  claimValidators: ClaimValidator[];
  scopes: Record<string, string>;
  tokenUrl?: string;
  oauth2MetadataUrl: string;
  /** RFC 9728 resource identifier; `undefined` when neither `resource`, `card.url` nor an absolute-URL audience gives one. */
  resource?: string;
  realm: string;
  card?: CardOptions & Required<Pick<CardOptions, 'version' | 'cacheMaxAge' | 'defaultVersion' | 'legacyPath' | 'securitySchemeName'>>;
  throttle: Required<CardThrottleOptions>;
  jwksTimeout: number;
  jwksCooldown: number;
  jwksCacheMaxAge: number;
  allowQueryToken: boolean;
  maxTokenLength: number;
  auditSink?: AuditSink;
  unknownScopePolicy: 'error' | 'warn';
  tokenCache: Required<TokenCacheOptions>;
  verifyOffThread: boolean;
  audit: Required<AuditOptions>;
  mtls?: Required<MtlsOptions>;
  introspection?: ResolvedIntrospectionOptions;
  dpop: ResolvedDPoPOptions;
  /** The module-wide delegation policy, defaults applied. */
  delegation: DelegationPolicy;
  store: { redis?: { url: string } | { client: unknown }; keyPrefix: string; timeoutMs: number };
  clientRateLimit?: ClientRateLimitOptions;
}

/** Thrown at boot for invalid options; the message names the option. */
export class A2AAuthConfigError extends Error {
  constructor(option: string, problem: string) {
    super(`nestjs-a2a-auth: invalid option \`${option}\`: ${problem}`);
    this.name = 'A2AAuthConfigError';
  }
}

function list(v: string | string[] | undefined): string[] {
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).filter((x) => typeof x === 'string');
}

function nonNegative(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new A2AAuthConfigError(name, `must be a non-negative number, got ${String(v)}`);
  return v;
}

// A zero deadline or token length would refuse every request; refuse it at boot instead.
function positive(name: string, v: number | undefined, dflt: number): number {
  const n = nonNegative(name, v, dflt);
  if (n === 0) throw new A2AAuthConfigError(name, 'must be greater than 0');
  return n;
}

function absoluteUrl(name: string, v: string | undefined): void {
  if (v === undefined) return;
  try {
    const u = new URL(v);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error();
  } catch {
    throw new A2AAuthConfigError(name, `must be an absolute http(s) URL, got ${JSON.stringify(v)}`);
  }
}

/**
 * Applies defaults and validates options. Called at boot; the app refuses to start on an error.
 * @throws A2AAuthConfigError naming the option (missing/empty `issuer` or `audience`, an algorithm
 *   outside {@link SUPPORTED_ALGORITHMS}, a negative duration, a malformed URL…).
 */
export function resolveOptions(o: A2AAuthModuleOptions): ResolvedOptions {
  if (!o || typeof o !== 'object') throw new A2AAuthConfigError('options', 'missing');
  const audience = list(o.audience).filter(Boolean);
  if (audience.length === 0) throw new A2AAuthConfigError('audience', 'is required and must not be empty');

  const rawIssuers = o.issuer === undefined || o.issuer === null ? [] : Array.isArray(o.issuer) ? o.issuer : [o.issuer];
  const issuers = rawIssuers.map((i) => {
    const io: IssuerOptions = typeof i === 'string' ? { issuer: i } : i;
    if (!io || typeof io.issuer !== 'string' || io.issuer === '') throw new A2AAuthConfigError('issuer', 'every issuer must be a non-empty string');
    absoluteUrl('issuer', io.issuer);
    absoluteUrl('jwksUri', io.jwksUri);
    const aud = list(io.audience);
    return { issuer: io.issuer, jwksUri: io.jwksUri, audience: aud.length ? aud : audience };
  });
  if (issuers.length === 0) throw new A2AAuthConfigError('issuer', 'is required and must not be empty');
  if (new Set(issuers.map((i) => i.issuer)).size !== issuers.length) throw new A2AAuthConfigError('issuer', 'lists the same issuer twice');
  if (o.jwksUri !== undefined) {
    absoluteUrl('jwksUri', o.jwksUri);
    if (issuers.length > 1) throw new A2AAuthConfigError('jwksUri', 'with several issuers, give each its own jwksUri');
    issuers[0].jwksUri ??= o.jwksUri;
  }

  const algorithms = (o.algorithms ?? ['RS256']) as string[];
  if (!Array.isArray(algorithms) || algorithms.length === 0) throw new A2AAuthConfigError('algorithms', 'must be a non-empty list');
  for (const a of algorithms) {
    if (!(SUPPORTED_ALGORITHMS as readonly string[]).includes(a)) {
      throw new A2AAuthConfigError('algorithms', `${JSON.stringify(a)} is not allowed; allowed: ${SUPPORTED_ALGORITHMS.join(', ')} (never none or HS*)`);
    }
  }

  const scopes = o.scopes ?? {};
  for (const [k, v] of Object.entries(scopes)) {
    if (!k || /\s/.test(k) || typeof v !== 'string')
      throw new A2AAuthConfigError('scopes', `entry ${JSON.stringify(k)} must be a scope token mapped to a description`);
  }
  absoluteUrl('tokenUrl', o.tokenUrl);
  absoluteUrl('oauth2MetadataUrl', o.oauth2MetadataUrl);
  absoluteUrl('resource', o.resource);

  let card: ResolvedOptions['card'];
  if (o.card) {
    if (!o.tokenUrl)
      throw new A2AAuthConfigError('tokenUrl', 'is required when `card` is configured (the card advertises the client-credentials token endpoint)');
    if (!o.card.name) throw new A2AAuthConfigError('card.name', 'is required');
    if (o.card.description === undefined) throw new A2AAuthConfigError('card.description', 'is required');
    absoluteUrl('card.url', o.card.url);
    if (!o.card.url) throw new A2AAuthConfigError('card.url', 'is required');
    if (!Array.isArray(o.card.interfaces)) {
      throw new A2AAuthConfigError(
        'card.interfaces',
        'is required: list the A2A bindings this app serves, e.g. [{ url: "/a2a/jsonrpc", protocolBinding: "JSONRPC" }], or [] for none',
      );
    }
    for (const [i, itf] of o.card.interfaces.entries()) {
      if (!itf || typeof itf.url !== 'string' || !['JSONRPC', 'HTTP+JSON', 'GRPC'].includes(itf.protocolBinding)) {
        throw new A2AAuthConfigError(`card.interfaces[${i}]`, 'needs a url and a protocolBinding of JSONRPC, HTTP+JSON or GRPC');
      }
    }
    card = {
      ...o.card,
      version: o.card.version ?? '1.0.0',
      cacheMaxAge: nonNegative('card.cacheMaxAge', o.card.cacheMaxAge, 300),
      defaultVersion: o.card.defaultVersion ?? '1.0',
      legacyPath: o.card.legacyPath ?? true,
      securitySchemeName: o.card.securitySchemeName ?? 'oauth2',
    };
    if (card.defaultVersion !== '1.0' && card.defaultVersion !== '0.3') throw new A2AAuthConfigError('card.defaultVersion', "must be '1.0' or '0.3'");
    if (card.extendedCardFor !== undefined && typeof card.extendedCardFor !== 'function')
      throw new A2AAuthConfigError('card.extendedCardFor', 'must be a function (caller, card) => card');
    if (card.extendedCardFor && !card.extendedCard) throw new A2AAuthConfigError('card.extendedCardFor', 'needs `card.extendedCard: true`');
  }
  const th = o.card?.throttle ?? {};
  const throttle = {
    limit: nonNegative('card.throttle.limit', th.limit, 60),
    ttl: nonNegative('card.throttle.ttl', th.ttl, 60),
    trustedProxyHops: nonNegative('card.throttle.trustedProxyHops', th.trustedProxyHops, 0),
    ipv6Prefix: th.ipv6Prefix ?? 64,
  };
  if (!Number.isInteger(throttle.ipv6Prefix) || throttle.ipv6Prefix < 1 || throttle.ipv6Prefix > 128) {
    throw new A2AAuthConfigError('card.throttle.ipv6Prefix', `must be an integer number of bits from 1 to 128, got ${String(th.ipv6Prefix)}`);
  }

  const dpop = resolveDPoP(o.dpop, throttle.trustedProxyHops);

  const firstIssuer = issuers[0].issuer.replace(/\/$/, '');
  const tc = o.tokenCache ?? {};
  const resource = o.resource ?? o.card?.url ?? audience.find((a) => /^https?:\/\//.test(a));
  return {
    issuers,
    issuerNames: issuers.map((i) => i.issuer),
    audience,
    algorithms: algorithms as SupportedAlgorithm[],
    clockTolerance: nonNegative('clockTolerance', o.clockTolerance, 5),
    maxTokenAge: o.maxTokenAge === undefined ? undefined : nonNegative('maxTokenAge', o.maxTokenAge, 0),
    strict: o.strict ?? false,
    scopeClaims: o.scopeClaims?.length ? [...o.scopeClaims] : [...DEFAULT_SCOPE_CLAIMS],
    claimValidators: o.claimValidators ?? [],
    scopes: { ...scopes },
    tokenUrl: o.tokenUrl,
    oauth2MetadataUrl: o.oauth2MetadataUrl ?? `${firstIssuer}/.well-known/openid-configuration`,
    resource,
    realm: o.realm ?? o.card?.name ?? 'a2a',
    card,
    throttle,
    jwksTimeout: positive('jwksTimeout', o.jwksTimeout, 5),
    jwksCooldown: nonNegative('jwksCooldown', o.jwksCooldown, 30),
    jwksCacheMaxAge: nonNegative('jwksCacheMaxAge', o.jwksCacheMaxAge, 600),
    allowQueryToken: o.allowQueryToken ?? false,
    maxTokenLength: positive('maxTokenLength', o.maxTokenLength, DEFAULT_MAX_TOKEN_LENGTH),
    auditSink: o.auditSink,
    unknownScopePolicy: o.unknownScopePolicy ?? 'error',
    tokenCache: {
      enabled: tc.enabled ?? true,
      maxEntries: nonNegative('tokenCache.maxEntries', tc.maxEntries, 10_000),
      maxTtl: nonNegative('tokenCache.maxTtl', tc.maxTtl, 300),
    },
    verifyOffThread: o.verifyOffThread ?? false,
    audit: {
      successes: o.audit?.successes ?? true,
      failureLogRatePerSecond: nonNegative('audit.failureLogRatePerSecond', o.audit?.failureLogRatePerSecond, 20),
    },
    introspection: o.introspection === undefined ? undefined : resolveIntrospection(o.introspection, issuers),
    mtls: o.mtls
      ? {
          requireBoundTokens: o.mtls.requireBoundTokens ?? true,
          advertise: o.mtls.advertise ?? true,
          description: o.mtls.description ?? 'Mutual TLS with a client certificate (RFC 8705); the access token must be bound to it',
        }
      : undefined,
    dpop,
    delegation: moduleDelegation(o.delegation),
    store: resolveStore(o.store, o.card?.url ?? resource, audience),
    clientRateLimit: o.clientRateLimit === undefined ? undefined : resolveClientRateLimit('clientRateLimit', o.clientRateLimit),
  };
}

const DPOP_MODES: readonly string[] = ['off', 'allowed', 'required'];

function resolveDPoP(v: DPoPMode | DPoPOptions | undefined, trustedProxyHops: number): ResolvedDPoPOptions {
  const d: DPoPOptions = v === undefined ? { mode: 'off' } : typeof v === 'string' ? { mode: v } : v;
  if (!d || typeof d !== 'object') throw new A2AAuthConfigError('dpop', "must be 'off', 'allowed', 'required' or an options object");
  const mode = d.mode ?? 'allowed';
  if (!DPOP_MODES.includes(mode)) throw new A2AAuthConfigError('dpop.mode', `must be 'off', 'allowed' or 'required', got ${JSON.stringify(mode)}`);
  const algorithms = (d.algorithms ?? [...DEFAULT_DPOP_ALGORITHMS]) as string[];
  if (!Array.isArray(algorithms) || algorithms.length === 0) throw new A2AAuthConfigError('dpop.algorithms', 'must be a non-empty list');
  for (const a of algorithms) {
    if (!(SUPPORTED_ALGORITHMS as readonly string[]).includes(a)) {
      throw new A2AAuthConfigError('dpop.algorithms', `${JSON.stringify(a)} is not allowed; allowed: ${SUPPORTED_ALGORITHMS.join(', ')} (never none or HS*)`);
    }
  }
  let nonce: ResolvedDPoPOptions['nonce'];
  if (d.nonce !== undefined) {
    const secret = typeof d.nonce?.secret === 'string' ? Buffer.from(d.nonce.secret, 'utf8') : d.nonce?.secret;
    if (!Buffer.isBuffer(secret) || secret.length < 32) throw new A2AAuthConfigError('dpop.nonce.secret', 'must be at least 32 bytes');
    nonce = { secret: Buffer.from(secret), rotateSeconds: positive('dpop.nonce.rotateSeconds', d.nonce.rotateSeconds, 300) };
  }
  let publicOrigin: string | undefined;
  if (d.publicOrigin !== undefined) {
    absoluteUrl('dpop.publicOrigin', d.publicOrigin);
    const u = new URL(d.publicOrigin);
    if (u.pathname !== '/' || u.search || u.hash || u.username || u.password) {
      throw new A2AAuthConfigError('dpop.publicOrigin', `must be an origin (scheme, host and port only), got ${JSON.stringify(d.publicOrigin)}`);
    }
    publicOrigin = u.origin;
  }
  if (d.replayCache !== undefined && typeof d.replayCache?.checkAndStore !== 'function') {
    throw new A2AAuthConfigError('dpop.replayCache', 'must have a checkAndStore(key, ttlSeconds) method');
  }
  return {
    mode,
    algorithms: algorithms as SupportedAlgorithm[],
    iatWindow: positive('dpop.iatWindow', d.iatWindow, 60),
    maxReplayEntries: positive('dpop.maxReplayEntries', d.maxReplayEntries, 100_000),
    replayCache: d.replayCache,
    nonce,
    publicOrigin,
    trustedProxyHops,
  };
}

function resolveIntrospection(i: IntrospectionOptions, issuers: ReadonlyArray<{ issuer: string }>): ResolvedIntrospectionOptions {
  if (!i || typeof i !== 'object') throw new A2AAuthConfigError('introspection', 'must be an object { clientId, clientSecret, endpoint? }');
  absoluteUrl('introspection.endpoint', i.endpoint);
  const issuer = issuers.length === 1 ? issuers[0].issuer : undefined;
  // The issuer identifies the authorization server (RFC 7523 §3); without a single one, the endpoint itself is the audience.
  const auth = resolveClientAuth(
    { ...i, assertionAudience: i.assertionAudience ?? issuer },
    (option, problem) => new A2AAuthConfigError(option, problem),
    'introspection.',
  );
  if (i.endpoint === undefined && issuers.length > 1) {
    throw new A2AAuthConfigError('introspection.endpoint', 'is required with several issuers (it cannot be discovered from one of them)');
  }
  const r: ResolvedIntrospectionOptions = {
    endpoint: i.endpoint,
    issuer,
    clientId: i.clientId,
    auth,
    timeout: positive('introspection.timeout', i.timeout, 5),
    cacheMaxTtl: nonNegative('introspection.cacheMaxTtl', i.cacheMaxTtl, 60),
    inactiveCacheTtl: nonNegative('introspection.inactiveCacheTtl', i.inactiveCacheTtl, 10),
    cacheMaxEntries: nonNegative('introspection.cacheMaxEntries', i.cacheMaxEntries, 10_000),
  };
  return r;
}

function moduleDelegation(o: DelegationOptions | undefined): DelegationPolicy {
  try {
    return resolveDelegation(o);
  } catch (e) {
    throw new A2AAuthConfigError('delegation', (e as Error).message);
  }
}

/** The longest delay a Node timer can wait, ms (2^31 − 1). */
const MAX_TIMER_MS = 2_147_483_647;

function resolveStore(s: StoreOptions | undefined, publicUrl: string | undefined, audience: readonly string[]): ResolvedOptions['store'] {
  if (s !== undefined && (typeof s !== 'object' || s === null)) throw new A2AAuthConfigError('store', 'must be an object');
  const redis = s?.redis;
  if (redis !== undefined) {
    const url = (redis as { url?: unknown }).url;
    const client = (redis as { client?: unknown }).client;
    if ((url === undefined) === (client === undefined)) throw new A2AAuthConfigError('store.redis', 'needs exactly one of `url` or `client`');
    if (url !== undefined && (typeof url !== 'string' || !/^rediss?:\/\//.test(url))) {
      throw new A2AAuthConfigError('store.redis.url', 'must be a redis:// or rediss:// URL');
    }
    if (client !== undefined && (typeof client !== 'object' || client === null))
      throw new A2AAuthConfigError('store.redis.client', 'must be an ioredis client');
  }
  if (s?.keyPrefix !== undefined && (typeof s.keyPrefix !== 'string' || s.keyPrefix === '')) {
    throw new A2AAuthConfigError('store.keyPrefix', 'must be a non-empty string');
  }
  const timeoutMs = positive('store.timeoutMs', s?.timeoutMs, 200);
  // Node fires a longer timer after 1 ms: every store operation would then time out at once (DPoP always 503).
  if (timeoutMs > MAX_TIMER_MS) throw new A2AAuthConfigError('store.timeoutMs', `must be at most ${MAX_TIMER_MS} ms, got ${timeoutMs}`);
  return { redis, keyPrefix: s?.keyPrefix ?? defaultKeyPrefix(publicUrl, audience), timeoutMs };
}

/**
 * Validates a per-client limit (module option or `@ClientRateLimit()`).
 * @throws A2AAuthConfigError naming `option` unless `limit` is a positive integer and `ttl` a positive number of seconds.
 */
export function resolveClientRateLimit(option: string, l: ClientRateLimitOptions): ClientRateLimitOptions {
  if (!l || typeof l !== 'object') throw new A2AAuthConfigError(option, 'must be { limit, ttl }');
  if (!Number.isInteger(l.limit) || l.limit < 1) throw new A2AAuthConfigError(`${option}.limit`, `must be a positive integer, got ${String(l.limit)}`);
  return { limit: l.limit, ttl: positive(`${option}.ttl`, l.ttl, 0) };
}
