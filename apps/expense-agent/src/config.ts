import type { ConfigService } from '@nestjs/config';
import { HUMAN_APPROVAL_EXTENSION_URI, IN_TASK_AUTH_EXTENSION_URI, type A2AAuthModuleOptions } from 'nestjs-a2a-auth';
import { APPROVAL_ENV } from './a2a/expense-approval';
import { EXPENSE_SCOPES } from './dev-clients';

/**
 * Environment variables of the sample agent (all optional; see README.md "Configuration").
 * Lists (`A2A_ISSUER`, `A2A_AUDIENCE`, `A2A_SCOPE_CLAIMS`, `A2A_ALGORITHMS`) are comma-separated.
 */
export const ENV = {
  /** Trusted issuer(s). Unset: the embedded dev authorization server is started and trusted. */
  issuer: 'A2A_ISSUER',
  /** Audience(s) the tokens must name. Default: `PUBLIC_URL`. */
  audience: 'A2A_AUDIENCE',
  /** JWKS URL. Default: `jwks_uri` from the issuer's discovery metadata. */
  jwksUri: 'A2A_JWKS_URI',
  /** Token endpoint advertised in the card. Default: `token_endpoint` from the issuer's discovery metadata. */
  tokenUrl: 'A2A_TOKEN_URL',
  /** Claims that carry scopes. Default `scope,scp`. */
  scopeClaims: 'A2A_SCOPE_CLAIMS',
  /** Allowed JWS algorithms. Default `RS256`. */
  algorithms: 'A2A_ALGORITHMS',
  /** Public base URL of the agent. Default `http://127.0.0.1:${PORT}`. */
  publicUrl: 'PUBLIC_URL',
  /** Listening port. Default 3000. */
  port: 'PORT',
  /** Listening address. Default 127.0.0.1. */
  host: 'HOST',
  /** DPoP (RFC 9449) mode of the resource server: `off`, `allowed` or `required`. Default `allowed`. */
  dpop: 'A2A_DPOP',
  /** RFC 7662 introspection endpoint for opaque tokens. Default: discovered from the issuer (`introspection_endpoint`). */
  introspectionUrl: 'A2A_INTROSPECTION_URL',
  /** The agent's client id at the introspection endpoint. Unset: no introspection (JWT access tokens only). */
  introspectionClientId: 'A2A_INTROSPECTION_CLIENT_ID',
  /** Its secret (`client_secret_basic`); required with `A2A_INTROSPECTION_CLIENT_ID`. */
  introspectionClientSecret: 'A2A_INTROSPECTION_CLIENT_SECRET',
  /** Accept delegated tokens (RFC 8693 `act`): `on` or `off`. Default `off`; `on` with the embedded dev authorization server. */
  delegation: 'A2A_DELEGATION',
  /** Most actors a delegation chain may hold. Default 2. */
  delegationMaxChain: 'A2A_DELEGATION_MAX_CHAIN',
  /** Client ids (or subjects) allowed as the current actor, comma-separated. Default: `DEV_ASSISTANT_ID` when set (the dev setups set it), else any actor. */
  delegationTrustedActors: 'A2A_DELEGATION_TRUSTED_ACTORS',
  /** Approving an expense above this amount over A2A also needs `expense:approve-large` (asked for mid-task). Default 1000. */
  approvalLimit: 'EXPENSE_APPROVAL_LIMIT',
  /** Redis shared by several instances (`redis://` or `rediss://`). Unset: state in this process's memory. */
  redisUrl: 'A2A_REDIS_URL',
  /** Prefix of every Redis key. Default: `a2a:<host><path>:` of `PUBLIC_URL`. */
  storeKeyPrefix: 'A2A_STORE_KEY_PREFIX',
  /** Per-client request limit, `<requests>/<seconds>` (e.g. `100/60`). Unset: no per-client limit. */
  clientRateLimit: 'A2A_CLIENT_RATE_LIMIT',
} as const;

/**
 * Parses `A2A_REDIS_URL` and `A2A_STORE_KEY_PREFIX` into the library's `store` option: `undefined` (state in each
 * process's memory) when `A2A_REDIS_URL` is unset or empty, else `{ redis: { url }, keyPrefix? }`.
 * @throws Error naming the variable when the URL is not `redis://` or `rediss://` with a host (the password is never
 *   repeated in the message), or when `A2A_STORE_KEY_PREFIX` is set without `A2A_REDIS_URL`.
 */
export function parseStore(get: (name: string) => string | undefined): A2AAuthModuleOptions['store'] {
  const url = get(ENV.redisUrl)?.trim();
  const keyPrefix = get(ENV.storeKeyPrefix)?.trim() || undefined;
  if (!url) {
    if (keyPrefix) throw new Error(`${ENV.storeKeyPrefix} needs ${ENV.redisUrl} (without Redis the state stays in this process)`);
    return undefined;
  }
  const u = URL.canParse(url) ? new URL(url) : undefined;
  if (!u || (u.protocol !== 'redis:' && u.protocol !== 'rediss:') || !u.hostname)
    throw new Error(`${ENV.redisUrl} must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379/0, got ${JSON.stringify(maskRedisUrl(url))}`);
  return keyPrefix ? { redis: { url }, keyPrefix } : { redis: { url } };
}

/** A Redis URL fit for printing: its password (if any) replaced by `***`; a value that is no URL is replaced whole. */
export function maskRedisUrl(url: string): string {
  if (!URL.canParse(url)) return /@/.test(url) ? '***' : url;
  const u = new URL(url);
  if (!u.password) return url;
  u.password = '***';
  return u.toString();
}

/**
 * Parses `A2A_CLIENT_RATE_LIMIT` (`<requests>/<seconds>`, e.g. `100/60`: 100 requests per 60 s per verified client)
 * into the library's `clientRateLimit`; `undefined` (no per-client limit) when unset or empty.
 * @throws Error naming the variable unless both numbers are positive integers.
 */
export function parseClientRateLimit(v: string | undefined): A2AAuthModuleOptions['clientRateLimit'] {
  if (v === undefined || v.trim() === '') return undefined;
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(v);
  const limit = m ? Number(m[1]) : NaN;
  const ttl = m ? Number(m[2]) : NaN;
  if (!(limit >= 1 && ttl >= 1 && Number.isSafeInteger(limit) && Number.isSafeInteger(ttl)))
    throw new Error(`${ENV.clientRateLimit} must be <requests>/<seconds> with positive integers, e.g. 100/60, got ${JSON.stringify(v)}`);
  return { limit, ttl };
}

/** The sample's longest accepted delegation chain when `A2A_DELEGATION_MAX_CHAIN` is unset (actors, not hops of the user). */
export const DEFAULT_DELEGATION_MAX_CHAIN = 2;

/**
 * The Expense agent's delegation policy (the library's `delegation` option, RFC 8693 §4.1 `act`) from
 * `A2A_DELEGATION` (`on` | `off`, default `off`: a real issuer's delegated tokens are refused until you say which
 * actors you trust; the dev setups pass `on`), `A2A_DELEGATION_MAX_CHAIN` (1–16, default
 * {@link DEFAULT_DELEGATION_MAX_CHAIN}) and `A2A_DELEGATION_TRUSTED_ACTORS` (comma-separated; default
 * `DEV_ASSISTANT_ID` when set, which the dev setups set to the Assistant agent's dev client; else any actor).
 * @throws Error naming the variable on a bad value.
 */
export function parseDelegation(get: (name: string) => string | undefined): NonNullable<A2AAuthModuleOptions['delegation']> {
  const on = (get(ENV.delegation) || 'off').trim().toLowerCase();
  if (on !== 'on' && on !== 'off') throw new Error(`${ENV.delegation} must be "on" or "off", got ${JSON.stringify(get(ENV.delegation))}`);
  const rawMax = get(ENV.delegationMaxChain);
  const max = rawMax ? (/^\d+$/.test(rawMax.trim()) ? Number(rawMax.trim()) : NaN) : DEFAULT_DELEGATION_MAX_CHAIN;
  if (!Number.isInteger(max) || max < 1 || max > 16)
    throw new Error(`${ENV.delegationMaxChain} must be an integer from 1 to 16, got ${JSON.stringify(rawMax)}`);
  if (on === 'off') return { accept: false };
  const devAssistant = get('DEV_ASSISTANT_ID');
  const trustedActors = csv(get(ENV.delegationTrustedActors)) ?? (devAssistant ? [devAssistant] : undefined);
  return trustedActors ? { accept: true, maxChainLength: max, trustedActors } : { accept: true, maxChainLength: max };
}

/** DPoP modes `A2A_DPOP` may name. */
const DPOP_MODES = ['off', 'allowed', 'required'] as const;
/** The sample's DPoP mode when `A2A_DPOP` is unset: Bearer and DPoP-bound tokens are both accepted. */
export const DEFAULT_DPOP_MODE = 'allowed';

/**
 * Parses `A2A_DPOP` (RFC 9449): `off` (Bearer only), `allowed` (Bearer or DPoP) or `required` (DPoP only); default
 * {@link DEFAULT_DPOP_MODE} when unset or empty.
 * @throws Error naming `A2A_DPOP` on any other value.
 */
export function parseDpopMode(v: string | undefined): (typeof DPOP_MODES)[number] {
  if (v === undefined || v === '') return DEFAULT_DPOP_MODE;
  const m = v.trim().toLowerCase();
  if (!(DPOP_MODES as readonly string[]).includes(m)) throw new Error(`${ENV.dpop} must be "off", "allowed" or "required", got ${JSON.stringify(v)}`);
  return m as (typeof DPOP_MODES)[number];
}

/** Default listening port. */
export const DEFAULT_PORT = 3000;
/** Default listening address (loopback only). */
export const DEFAULT_HOST = '127.0.0.1';
/** Deadline of the whole discovery of `A2A_TOKEN_URL` (both metadata locations together), milliseconds. */
export const DISCOVERY_TIMEOUT_MS = 5000;

/** Splits a comma-separated variable; `undefined` when unset or empty. */
export function csv(v: string | undefined): string[] | undefined {
  const items = (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return items.length ? items : undefined;
}

/** Parses a port number (0–65535) read from `variable` (default `PORT`). @throws Error naming `variable` on anything else. */
export function parsePort(v: string | number | undefined, variable: string = ENV.port): number {
  if (v === undefined || v === '') return DEFAULT_PORT;
  const n = typeof v === 'number' ? v : /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${variable} must be an integer between 0 and 65535, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * Checks that `value` is an absolute `http://` or `https://` URL and returns it unchanged.
 * `new URL('localhost:9000')` parses (with the scheme `localhost:`), so the scheme is checked explicitly.
 * @throws Error naming `variable`, what it should hold (`what`) and the value received.
 */
export function httpUrl(variable: string, value: string, what: string): string {
  const u = URL.canParse(value) ? new URL(value) : undefined;
  if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:') || !u.hostname)
    throw new Error(`${variable} must be an absolute URL starting with https:// or http:// (${what}), got ${JSON.stringify(value)}`);
  return value;
}

/** What `A2A_ISSUER` holds, for error messages. */
const ISSUER_WHAT = "the issuer's exact iss value, e.g. https://auth.example.com/realms/agents; comma-separated for several";

/**
 * Parses `A2A_ISSUER`: comma-separated absolute http(s) URLs; `undefined` when unset or empty.
 * @throws Error naming `A2A_ISSUER` when an item is not an absolute http(s) URL (e.g. `localhost:9000`).
 */
export function parseIssuers(v: string | undefined): string[] | undefined {
  return csv(v)?.map((i) => httpUrl(ENV.issuer, i, ISSUER_WHAT));
}

/**
 * `PUBLIC_URL` without a trailing slash, defaulting to `http://127.0.0.1:<port>`.
 * @throws Error naming `PUBLIC_URL` when it is not an absolute http(s) URL, or when it is unset and `nodeEnv` is
 *   `production` (a deployed agent's card must not advertise a loopback address).
 */
export function publicUrlOf(publicUrl: string | undefined, port: number, nodeEnv?: string): string {
  if (publicUrl) return httpUrl(ENV.publicUrl, publicUrl, "the agent's public base URL, e.g. https://expenses.example.com").replace(/\/+$/, '');
  if (nodeEnv === 'production') {
    throw new Error(
      `PUBLIC_URL is not set: with NODE_ENV=production the Agent Card must advertise the agent's public base URL, ` +
        `e.g. PUBLIC_URL=https://expenses.example.com (it would otherwise say http://127.0.0.1:${port})`,
    );
  }
  return `http://127.0.0.1:${port}`;
}

/** Why a fetch was rejected, in words: the timeout, or the network cause with its code (undici hides it in `cause`). */
function fetchFailure(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  const code = e?.cause?.code;
  const words: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host name lookup failed',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    ETIMEDOUT: 'connection timed out',
    UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
    UND_ERR_SOCKET: 'connection closed',
  };
  if (code && words[code]) return `${words[code]} (${code})`;
  // OpenSSL's own message is a dump of its internals; the code says enough.
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER') return `TLS handshake failed (${code}): is it an http:// server?`;
  if (code?.startsWith('ERR_SSL_')) return `TLS handshake failed (${code})`;
  if (code && /CERT/.test(code)) return `TLS certificate rejected: ${e?.cause?.message} (${code})`;
  const detail = e?.cause?.message ?? e?.message ?? String(err);
  return code ? `${detail} (${code})` : detail;
}

/**
 * Reads `token_endpoint` from the issuer's OpenID Connect discovery document, else its RFC 8414 metadata.
 * When the issuer cannot be reached at all, the second location (same host) is not tried: it would fail the same way.
 * @param timeoutMs one deadline for the whole discovery (both locations together), milliseconds (default {@link DISCOVERY_TIMEOUT_MS}).
 * @throws Error naming `A2A_ISSUER`, each URL tried and why it failed (connection refused, HTTP 404, no answer within
 *   the timeout, not JSON, no `token_endpoint`), and `A2A_TOKEN_URL` as the way to skip discovery.
 */
export async function discoverTokenUrl(issuer: string, timeoutMs: number = DISCOVERY_TIMEOUT_MS): Promise<string> {
  const base = issuer.replace(/\/+$/, '');
  const u = new URL(httpUrl(ENV.issuer, issuer, ISSUER_WHAT));
  const path = u.pathname === '/' ? '' : u.pathname.replace(/\/+$/, '');
  const failures: string[] = [];
  // One deadline for both locations, so a slow issuer costs at most `timeoutMs` in total, as documented.
  const signal = AbortSignal.timeout(timeoutMs);
  for (const url of [`${base}/.well-known/openid-configuration`, `${u.origin}/.well-known/oauth-authorization-server${path}`]) {
    let res: Response;
    try {
      res = await fetch(url, { signal, headers: { accept: 'application/json' } });
    } catch (err) {
      failures.push(`GET ${url}: ${fetchFailure(err, timeoutMs)}`);
      break;
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      failures.push(`GET ${url}: HTTP ${res.status}`);
      continue;
    }
    let meta: { token_endpoint?: unknown };
    try {
      meta = (await res.json()) as { token_endpoint?: unknown };
    } catch (err) {
      const e = err as { name?: string };
      failures.push(`GET ${url}: ${e?.name === 'TimeoutError' || e?.name === 'AbortError' ? `no answer within ${timeoutMs} ms` : 'HTTP 200 but not JSON'}`);
      continue;
    }
    if (typeof meta?.token_endpoint === 'string' && meta.token_endpoint) return meta.token_endpoint;
    failures.push(`GET ${url}: no token_endpoint in the metadata`);
  }
  throw new Error(
    `Cannot discover the token endpoint of A2A_ISSUER ${JSON.stringify(issuer)}: ${failures.join('; ')}. ` +
      'Check A2A_ISSUER, or set A2A_TOKEN_URL to skip discovery',
  );
}

/**
 * The `forRootAsync` factory of the sample: builds the library options from configuration values
 * (the variables in {@link ENV}, read through `ConfigService`).
 *
 * - `A2A_ISSUER` is required here; `bootstrap()` in main.ts fills it with the embedded dev server's issuer when unset.
 * - `A2A_TOKEN_URL` falls back to discovery from the (first) issuer.
 * - `A2A_INTROSPECTION_CLIENT_ID` (+ `_SECRET`, `A2A_INTROSPECTION_URL`) turns on `introspection` (opaque tokens, RFC 7662).
 * - `A2A_DPOP` sets `dpop` (default `'allowed'`: Bearer and DPoP-bound tokens, RFC 9449).
 * - `A2A_REDIS_URL` (+ `A2A_STORE_KEY_PREFIX`) sets `store` (several instances share limits and the DPoP replay
 *   cache); `A2A_CLIENT_RATE_LIMIT` sets `clientRateLimit`.
 * - The Agent Card: JSON-RPC at `${PUBLIC_URL}/a2a/jsonrpc`, HTTP+JSON at `${PUBLIC_URL}`, extended card on.
 * @throws Error naming the variable when one is missing or invalid (the app then refuses to boot).
 */
export async function authOptionsFromConfig(config: ConfigService): Promise<A2AAuthModuleOptions> {
  const get = (k: string) => {
    const v = config.get<string | number | undefined>(k);
    return v === undefined || v === null || v === '' ? undefined : String(v);
  };
  const port = parsePort(get(ENV.port));
  const publicUrl = publicUrlOf(get(ENV.publicUrl), port, get('NODE_ENV'));
  const issuers = parseIssuers(get(ENV.issuer));
  if (!issuers) throw new Error('A2A_ISSUER is not set (start the agent with bootstrap() to use the embedded dev authorization server)');
  const audience = csv(get(ENV.audience)) ?? [publicUrl];
  const jwksUriVar = get(ENV.jwksUri);
  const jwksUri = jwksUriVar && httpUrl(ENV.jwksUri, jwksUriVar, "the issuer's JWKS URL, e.g. https://auth.example.com/.well-known/jwks.json");
  const tokenUrlVar = get(ENV.tokenUrl);
  const tokenUrl = tokenUrlVar
    ? httpUrl(ENV.tokenUrl, tokenUrlVar, "the issuer's token endpoint, e.g. https://auth.example.com/oauth2/token")
    : await discoverTokenUrl(issuers[0]);

  const introspectionClientId = get(ENV.introspectionClientId);
  const introspectionClientSecret = get(ENV.introspectionClientSecret);
  if (introspectionClientId && !introspectionClientSecret) throw new Error(`${ENV.introspectionClientSecret} is required with ${ENV.introspectionClientId}`);
  const introspectionUrl = get(ENV.introspectionUrl);
  const introspection =
    introspectionClientId && introspectionClientSecret
      ? {
          clientId: introspectionClientId,
          clientSecret: introspectionClientSecret,
          endpoint: introspectionUrl && httpUrl(ENV.introspectionUrl, introspectionUrl, "the issuer's RFC 7662 introspection endpoint"),
        }
      : undefined;

  return {
    issuer: issuers,
    audience,
    jwksUri,
    algorithms: csv(get(ENV.algorithms)),
    scopeClaims: csv(get(ENV.scopeClaims)),
    scopes: { ...EXPENSE_SCOPES },
    tokenUrl,
    dpop: parseDpopMode(get(ENV.dpop)),
    delegation: parseDelegation(get),
    introspection,
    store: parseStore(get),
    clientRateLimit: parseClientRateLimit(get(ENV.clientRateLimit)),
    card: {
      name: 'Expense Reimbursement Agent',
      description: 'Submits, approves and lists expense claims. A sample A2A agent secured with OAuth 2.0 client credentials by nestjs-a2a-auth.',
      version: '0.1.0',
      provider: { organization: 'Example Corp (nestjs-a2a-auth sample)', url: 'https://example.com' },
      url: publicUrl,
      interfaces: [
        { url: `${publicUrl}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
        { url: publicUrl, protocolBinding: 'HTTP+JSON', protocolVersion: '1.0' },
      ],
      extendedCard: true,
      // The A2A bindings (src/a2a) serve SendStreamingMessage and POST /message:stream as server-sent events.
      capabilities: {
        streaming: true,
        extensions: [
          {
            uri: IN_TASK_AUTH_EXTENSION_URI,
            description: 'A task may wait in TASK_STATE_AUTH_REQUIRED for a token with more scopes (see docs/in-task-authorization.md)',
            params: { scopes: ['expense:approve-large'] },
          },
          // Human approval (OpenID Connect CIBA) is on when the agent has a CIBA client (A2A_APPROVAL_CLIENT_ID).
          ...(get(APPROVAL_ENV.clientId)
            ? [
                {
                  uri: HUMAN_APPROVAL_EXTENSION_URI,
                  description: "A task may wait in TASK_STATE_AUTH_REQUIRED for a named user's approval (see docs/human-approval.md)",
                },
              ]
            : []),
        ],
      },
    },
  };
}
