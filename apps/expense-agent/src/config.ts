import type { ConfigService } from '@nestjs/config';
import type { A2AAuthModuleOptions } from 'nestjs-a2a-auth';
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
} as const;

/** Default listening port. */
export const DEFAULT_PORT = 3000;
/** Default listening address (loopback only). */
export const DEFAULT_HOST = '127.0.0.1';
/** Timeout of the discovery fetch for `A2A_TOKEN_URL`, milliseconds. */
const DISCOVERY_TIMEOUT_MS = 5000;

/** Splits a comma-separated variable; `undefined` when unset or empty. */
export function csv(v: string | undefined): string[] | undefined {
  const items = (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return items.length ? items : undefined;
}

/** Parses `PORT` (0–65535). @throws Error naming `PORT` on anything else. */
export function parsePort(v: string | number | undefined): number {
  if (v === undefined || v === '') return DEFAULT_PORT;
  const n = typeof v === 'number' ? v : /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`PORT must be an integer between 0 and 65535, got ${JSON.stringify(v)}`);
  return n;
}

/** `PUBLIC_URL` without a trailing slash, defaulting to `http://127.0.0.1:<port>`. */
export function publicUrlOf(publicUrl: string | undefined, port: number): string {
  return (publicUrl || `http://127.0.0.1:${port}`).replace(/\/+$/, '');
}

/**
 * Reads `token_endpoint` from the issuer's OpenID Connect discovery document, else its RFC 8414 metadata.
 * @throws Error naming `A2A_TOKEN_URL` when neither answers within 5 s with a token endpoint.
 */
export async function discoverTokenUrl(issuer: string): Promise<string> {
  const base = issuer.replace(/\/+$/, '');
  const u = new URL(issuer);
  const path = u.pathname === '/' ? '' : u.pathname.replace(/\/+$/, '');
  for (const url of [`${base}/.well-known/openid-configuration`, `${u.origin}/.well-known/oauth-authorization-server${path}`]) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS), headers: { accept: 'application/json' } });
      if (!res.ok) continue;
      const meta = (await res.json()) as { token_endpoint?: unknown };
      if (typeof meta.token_endpoint === 'string' && meta.token_endpoint) return meta.token_endpoint;
    } catch {
      // try the next metadata location
    }
  }
  throw new Error(`A2A_TOKEN_URL is not set and no token_endpoint could be discovered from the issuer ${JSON.stringify(issuer)}; set A2A_TOKEN_URL`);
}

/**
 * The `forRootAsync` factory of the sample: builds the library options from configuration values
 * (the variables in {@link ENV}, read through `ConfigService`).
 *
 * - `A2A_ISSUER` is required here; `bootstrap()` in main.ts fills it with the embedded dev server's issuer when unset.
 * - `A2A_TOKEN_URL` falls back to discovery from the (first) issuer.
 * - The Agent Card: JSON-RPC at `${PUBLIC_URL}/a2a/jsonrpc`, HTTP+JSON at `${PUBLIC_URL}`, extended card on.
 * @throws Error naming the variable when one is missing or invalid (the app then refuses to boot).
 */
export async function authOptionsFromConfig(config: ConfigService): Promise<A2AAuthModuleOptions> {
  const get = (k: string) => {
    const v = config.get<string | number | undefined>(k);
    return v === undefined || v === null || v === '' ? undefined : String(v);
  };
  const port = parsePort(get(ENV.port));
  const publicUrl = publicUrlOf(get(ENV.publicUrl), port);
  const issuers = csv(get(ENV.issuer));
  if (!issuers) throw new Error('A2A_ISSUER is not set (start the agent with bootstrap() to use the embedded dev authorization server)');
  const audience = csv(get(ENV.audience)) ?? [publicUrl];
  const tokenUrl = get(ENV.tokenUrl) ?? (await discoverTokenUrl(issuers[0]));

  return {
    issuer: issuers,
    audience,
    jwksUri: get(ENV.jwksUri),
    algorithms: csv(get(ENV.algorithms)),
    scopeClaims: csv(get(ENV.scopeClaims)),
    scopes: { ...EXPENSE_SCOPES },
    tokenUrl,
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
      capabilities: { streaming: true },
    },
  };
}
