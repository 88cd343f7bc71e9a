import { ClientAuthenticationError, clientAuthentication, type ResolvedClientAuth } from '../core/client-auth';
import type { DPoPProofSigner } from './dpop';
import { ClientCredentialsError, TokenEndpointError, TokenEndpointUnavailableError } from './errors';

/** Largest token response read, bytes. */
const MAX_BODY = 256 * 1024;
/** Form parameters a caller's `extraParams` may never set: the grant and the client's credentials. @internal */
export const RESERVED_PARAMS = ['grant_type', 'client_id', 'client_secret', 'client_assertion', 'client_assertion_type', 'scope', 'resource', 'audience'];

/** One provider's way of calling its token endpoint. @internal */
export interface TokenEndpointClient {
  tokenUrl: string;
  auth: ResolvedClientAuth;
  fetch: typeof fetch;
  /** Milliseconds. */
  timeoutMs: number;
  dpop?: DPoPProofSigner;
  /** Called once per HTTP request sent (nonce and rotation retries included). */
  counted: () => void;
}

/** A 2xx token response with an `access_token`, and a builder of the provider's typed error for its further checks. @internal */
export interface TokenEndpointAnswer {
  body: Record<string, unknown>;
  accessToken: string;
  /** When the request was sent, milliseconds since the epoch. */
  obtainedAt: number;
  /** A {@link TokenEndpointError} for this answer (e.g. `invalid_token_response`). */
  fail: (error: string, description?: string) => TokenEndpointError;
  /** Server text, shortened, with every secret of the request removed. */
  clean: (s: string) => string;
}

/**
 * The token request shared by the client-credentials and token-exchange providers: adds the client authentication
 * (read from its source for every attempt), POSTs the form, and maps the answer.
 *
 * - RFC 9449 §8: a `400 use_dpop_nonce` answer with a `DPoP-Nonce` is retried once with that nonce.
 * - RFC 6749 §5.2 `invalid_client` (400/401) with a credential that comes from a function: the function is called
 *   again and the request retried once (a secret or key rotated in the store); a second refusal is the error.
 * - 3xx (never followed), 5xx, network errors and timeouts → {@link TokenEndpointUnavailableError}; any other non-2xx
 *   → {@link TokenEndpointError} with the server's `error` (or `unexpected_response`); a 2xx without `access_token` →
 *   `invalid_token_response`. Texts from the server are shortened and scrubbed of the secret, the assertion and `redact`.
 * @throws ClientCredentialsError when the credential source fails.
 */
export async function postTokenRequest(c: TokenEndpointClient, form: URLSearchParams, redact: readonly string[] = []): Promise<TokenEndpointAnswer> {
  let rotated = false;
  for (;;) {
    let creds;
    try {
      creds = await clientAuthentication(c.auth, c.tokenUrl, c.timeoutMs);
    } catch (e) {
      if (e instanceof ClientAuthenticationError) throw new ClientCredentialsError(e.message);
      throw e;
    }
    const f = new URLSearchParams(form);
    for (const [k, v] of Object.entries(creds.params)) f.set(k, v);
    const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...creds.headers };
    const secrets = [...creds.redact, ...redact];
    const scrub = (s: string) => clean(s, secrets);

    const obtainedAt = Date.now();
    let { res, text } = await send(c, headers, f, scrub);
    if (c.dpop && res.status === 400 && errorCode(text) === 'use_dpop_nonce' && c.dpop.observe(c.tokenUrl, res.headers)) {
      ({ res, text } = await send(c, headers, f, scrub));
    }
    if (res.status >= 300 && res.status < 400) throw new TokenEndpointUnavailableError({ kind: 'redirect', status: res.status, tokenUrl: c.tokenUrl });
    if (res.status >= 500) throw new TokenEndpointUnavailableError({ kind: 'server_error', status: res.status, tokenUrl: c.tokenUrl });
    let body: Record<string, unknown> | undefined;
    try {
      const j = JSON.parse(text) as unknown;
      if (j && typeof j === 'object' && !Array.isArray(j)) body = j as Record<string, unknown>;
    } catch {
      body = undefined;
    }
    const status = res.status;
    const fail = (error: string, description?: string) =>
      new TokenEndpointError({ error, errorDescription: description, status, tokenUrl: c.tokenUrl, clientId: c.auth.clientId });
    if (status < 200 || status >= 300) {
      const error = oauthErrorCode(body) ?? 'unexpected_response';
      // A rotated credential: the store may already hold the new one, so ask it once more.
      if (error === 'invalid_client' && (status === 400 || status === 401) && c.auth.rotatable && !rotated) {
        rotated = true;
        continue;
      }
      throw fail(error, typeof body?.error_description === 'string' ? scrub(body.error_description) : undefined);
    }
    const accessToken = body?.access_token;
    if (typeof accessToken !== 'string' || accessToken === '') throw fail('invalid_token_response', 'no access_token in the response');
    return { body: body!, accessToken, obtainedAt, fail, clean: scrub };
  }
}

async function send(
  c: TokenEndpointClient,
  headers: Record<string, string>,
  form: URLSearchParams,
  scrub: (s: string) => string,
): Promise<{ res: Response; text: string }> {
  const h = { ...headers };
  // RFC 9449 §5: the proof at the token endpoint has htm POST, htu the token URL and no ath.
  if (c.dpop) h.dpop = await c.dpop.proof({ htm: 'POST', url: c.tokenUrl });
  c.counted();
  try {
    const res = await c.fetch(c.tokenUrl, { method: 'POST', headers: h, body: form.toString(), redirect: 'manual', signal: AbortSignal.timeout(c.timeoutMs) });
    const text = await readLimited(res, MAX_BODY);
    c.dpop?.observe(c.tokenUrl, res.headers);
    return { res, text };
  } catch (e) {
    const name = (e as Error)?.name;
    if (name === 'TimeoutError' || name === 'AbortError') {
      throw new TokenEndpointUnavailableError({ kind: 'timeout', tokenUrl: c.tokenUrl, detail: `no answer within ${c.timeoutMs} ms` });
    }
    const err = e as { message?: string; cause?: { code?: string } };
    throw new TokenEndpointUnavailableError({ kind: 'network', tokenUrl: c.tokenUrl, detail: scrub(err?.cause?.code ?? err?.message ?? 'fetch failed') });
  }
}

/**
 * The `error` of an OAuth 2.0 error response (RFC 6749 §5.2) when it is a well-formed code (printable ASCII without `"`
 * or `\\`, at most 64 characters), so it can be put in an error and a log line as is; otherwise `undefined`. @internal
 */
export function oauthErrorCode(body: Record<string, unknown> | undefined): string | undefined {
  return typeof body?.error === 'string' && /^[\x20-\x21\x23-\x5b\x5d-\x7e]{1,64}$/.test(body.error) ? body.error : undefined;
}

function errorCode(text: string): unknown {
  try {
    return (JSON.parse(text) as { error?: unknown })?.error;
  } catch {
    return undefined;
  }
}

/** A response body as text, or `''` when it is larger than `max` characters. @internal */
export async function readLimited(res: Response, max: number): Promise<string> {
  const len = Number(res.headers.get('content-length') ?? '0');
  if (len > max) {
    await res.body?.cancel().catch(() => undefined);
    return '';
  }
  const text = await res.text();
  return text.length > max ? '' : text;
}

/** Server-provided text, shortened to 200 characters, control characters removed and every `secrets` entry redacted. @internal */
export function clean(s: string, secrets: readonly string[] | string): string {
  // eslint-disable-next-line no-control-regex -- server text may carry control characters; they never reach an error message
  let out = s.replace(/[\x00-\x1f\x7f]/g, ' ');
  for (const secret of typeof secrets === 'string' ? [secrets] : secrets) if (secret) out = out.split(secret).join('[redacted]');
  return out.slice(0, 200);
}
