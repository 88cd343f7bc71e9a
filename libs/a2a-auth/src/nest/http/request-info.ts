/** Minimal view of an express or fastify request used by the guard. */
export interface HttpRequestLike {
  headers: Record<string, string | string[] | undefined>;
  rawHeaders?: string[];
  raw?: { rawHeaders?: string[]; socket?: SocketLike; url?: string };
  socket?: SocketLike;
  query?: Record<string, unknown>;
  method?: string;
  url?: string;
  originalUrl?: string;
  routeOptions?: { url?: string };
  route?: { path?: string };
  user?: unknown;
}

interface SocketLike {
  remoteAddress?: string;
  getPeerCertificate?: (detailed?: boolean) => { raw?: Buffer } | Record<string, never>;
  authorized?: boolean;
}

/** Number of `Authorization` header lines in the raw request (Node keeps only the first in `headers`). */
export function countAuthorizationHeaders(req: HttpRequestLike): number {
  const raw = req.rawHeaders ?? req.raw?.rawHeaders;
  if (!raw) return req.headers.authorization === undefined ? 0 : 1;
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const h = raw[i];
    if (h.length === 13 && h.toLowerCase() === 'authorization') n++;
  }
  return n;
}

/** The TLS socket of the request (express or fastify). */
export function socketOf(req: HttpRequestLike): SocketLike | undefined {
  return req.socket ?? req.raw?.socket;
}

/**
 * The client address: the socket peer, or with `trustedProxyHops = N > 0` the address N hops from the
 * right of `X-Forwarded-For` + peer. The left-most entry is client-controlled and is never trusted by position.
 */
export function clientAddress(req: HttpRequestLike, trustedProxyHops = 0): string {
  const peer = socketOf(req)?.remoteAddress ?? 'unknown';
  if (trustedProxyHops <= 0) return peer;
  const xff = req.headers['x-forwarded-for'];
  const joined = Array.isArray(xff) ? xff.join(',') : (xff ?? '');
  const chain = joined
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  chain.push(peer);
  const idx = chain.length - 1 - trustedProxyHops;
  return idx >= 0 ? chain[idx] : chain[0];
}

/** Route pattern when known (express `route.path`, fastify `routeOptions.url`), else the path without query. */
export function routeOf(req: HttpRequestLike): string | undefined {
  const pattern = req.routeOptions?.url ?? req.route?.path;
  if (pattern) return pattern;
  const u = req.originalUrl ?? req.url ?? req.raw?.url;
  return u?.split('?')[0];
}
