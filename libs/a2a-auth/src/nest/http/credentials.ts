import { extractAccessToken, type PresentedToken, type TokenScheme } from '../../core/bearer';
import type { DPoPRequest } from '../../core/dpop';
import type { DPoPMode, ResolvedDPoPOptions } from '../../core/options';
import type { VerificationContext } from '../../core/verifier';
import { countAuthorizationHeaders, socketOf, type HttpRequestLike } from './request-info';

const NO_CONTEXT: VerificationContext = Object.freeze({});

/**
 * The access token of an express or fastify request and its scheme (RFC 6750 §2.1, §2.3 when `allowQueryToken`, and
 * RFC 9449 §7.1 `DPoP` unless the route's DPoP mode is `'off'`), with the same rules for every entry point (the guard
 * and the Passport strategy).
 * @param mode the route's DPoP mode (its route policy, else the module's).
 * @throws AuthError as {@link extractAccessToken}.
 */
export function credentialsOf(req: HttpRequestLike, o: { allowQueryToken: boolean; maxTokenLength: number }, mode: DPoPMode = 'off'): PresentedToken {
  return extractAccessToken(
    {
      authorization: req.headers?.authorization,
      authorizationCount: req.headers ? countAuthorizationHeaders(req) : 0,
      // Express 5 parses the query string on every `req.query` read; without a `?` there is none.
      queryToken: req.url === undefined || req.url.includes('?') ? (req.query?.access_token as string | string[] | undefined) : undefined,
    },
    { allowQueryToken: o.allowQueryToken, maxTokenLength: o.maxTokenLength, acceptDPoP: mode !== 'off' },
  );
}

/** What {@link verificationContextOf} needs from the resolved options. */
export interface ContextOptions {
  /** Certificate-bound tokens are required (the `mtls` option). */
  mtls: boolean;
  /** The module-wide DPoP settings; `undefined` is DPoP off. */
  dpop?: Pick<ResolvedDPoPOptions, 'mode' | 'publicOrigin' | 'trustedProxyHops'>;
}

/**
 * The request facts the verifier needs for sender-constrained tokens: the TLS client certificate (RFC 8705), the
 * scheme, the route's DPoP mode and, lazily, what a DPoP proof must match (RFC 9449 §4.3). A Bearer request on a route
 * with the module-wide DPoP mode and without mTLS needs none, and no object is allocated on that hot path.
 */
export function verificationContextOf(req: HttpRequestLike, o: ContextOptions, scheme: TokenScheme = 'Bearer', mode?: DPoPMode): VerificationContext {
  const moduleMode = o.dpop?.mode ?? 'off';
  const routeMode = mode ?? moduleMode;
  if (!o.mtls && scheme === 'Bearer' && routeMode === moduleMode) return NO_CONTEXT;
  const ctx: VerificationContext = { scheme, dpopMode: routeMode };
  if (o.mtls) {
    ctx.clientCertificate = () => {
      const sock = socketOf(req);
      if (!sock?.authorized) return undefined;
      const cert = sock.getPeerCertificate?.(false) as { raw?: Buffer } | undefined;
      return cert?.raw;
    };
  }
  if (scheme === 'DPoP' && o.dpop) {
    const d = o.dpop;
    ctx.dpopRequest = (): DPoPRequest => ({ proofs: headerLines(req, 'dpop'), method: req.method ?? '', uri: requestUri(req, d) });
  }
  return ctx;
}

/** Every line of a request header, as received (Node joins repeated unknown headers into one value, so raw headers are read). */
function headerLines(req: HttpRequestLike, lowerName: string): string[] {
  const raw = req.rawHeaders ?? req.raw?.rawHeaders;
  if (!raw) {
    const v = req.headers[lowerName];
    return v === undefined ? [] : Array.isArray(v) ? v : [v];
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i].length === lowerName.length && raw[i].toLowerCase() === lowerName) out.push(raw[i + 1]);
  return out;
}

const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The value the `trustedProxyHops`-th proxy from the right wrote into a forwarding header, with the rule
 * `X-Forwarded-For` follows for the client address (entries further left are client-controlled).
 */
function forwarded(req: HttpRequestLike, name: string, hops: number): string | undefined {
  const v = req.headers[name];
  const list = (Array.isArray(v) ? v.join(',') : (v ?? ''))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0) return undefined;
  return list[Math.max(0, list.length - hops)];
}

/**
 * The absolute URI the client addressed, for the proof's `htu`: `publicOrigin` (when set) and the request target;
 * else the scheme from TLS and the `Host` header, or with `trustedProxyHops` > 0 `X-Forwarded-Proto` and
 * `X-Forwarded-Host` as the trusted proxies set them. `undefined` when the origin cannot be known (the proof then fails).
 */
export function requestUri(req: HttpRequestLike, d: Pick<ResolvedDPoPOptions, 'publicOrigin' | 'trustedProxyHops'>): string | undefined {
  const target = req.originalUrl ?? req.raw?.url ?? req.url;
  if (!target) return undefined;
  if (/^https?:\/\//i.test(target)) return target; // absolute-form request target (RFC 9112 §3.2.2)
  if (!target.startsWith('/')) return undefined;
  if (d.publicOrigin) return d.publicOrigin + target;
  const encrypted = (socketOf(req) as { encrypted?: boolean } | undefined)?.encrypted === true;
  let proto = encrypted ? 'https' : 'http';
  const h = req.headers.host;
  let host = Array.isArray(h) ? h[0] : h;
  if (d.trustedProxyHops > 0) {
    const fp = forwarded(req, 'x-forwarded-proto', d.trustedProxyHops)?.toLowerCase();
    if (fp) proto = fp;
    host = forwarded(req, 'x-forwarded-host', d.trustedProxyHops) ?? host;
  }
  if ((proto !== 'http' && proto !== 'https') || !host || !HOST.test(host)) return undefined;
  return `${proto}://${host}${target}`;
}
