import { isIP } from 'node:net';
import { normalizeIp } from '@nestjs/throttler';

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
 * One address as a bare IP: brackets, a port and an IPv6 zone id are stripped (`[2001:db8::1]:443` → `2001:db8::1`,
 * `192.0.2.1:5678` → `192.0.2.1`, `fe80::1%eth0` → `fe80::1`). Proxies write all of these into `X-Forwarded-For`.
 * @returns `undefined` when the value is no IP address (`unknown`, a host name, garbage), as `net.isIP` decides.
 */
export function bareAddress(value: string | undefined): string | undefined {
  if (!value) return undefined;
  let a = value.trim();
  const bracketed = /^\[([^\]]*)\](?::\d{1,5})?$/.exec(a);
  if (bracketed) a = bracketed[1];
  else if (/^[^:]+:\d{1,5}$/.test(a)) a = a.slice(0, a.indexOf(':')); // IPv4 (or garbage) with a port: one colon only
  const zone = a.indexOf('%');
  if (zone >= 0 && a.includes(':')) a = a.slice(0, zone);
  return isIP(a) ? a : undefined;
}

/**
 * The client address: the socket peer, or with `trustedProxyHops = N > 0` the address N hops from the
 * right of `X-Forwarded-For` + peer. The left-most entry is client-controlled and is never trusted by position.
 * The result is a bare IP ({@link bareAddress}); an entry that is no IP address gives the socket peer, so garbage
 * never opens a fresh rate-limit bucket. Rate limits group it further with {@link rateLimitKey}.
 */
export function clientAddress(req: HttpRequestLike, trustedProxyHops = 0): string {
  const socketPeer = socketOf(req)?.remoteAddress;
  const peer = bareAddress(socketPeer) ?? socketPeer ?? 'unknown';
  if (trustedProxyHops <= 0) return peer;
  const xff = req.headers['x-forwarded-for'];
  const joined = Array.isArray(xff) ? xff.join(',') : (xff ?? '');
  const chain = joined
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  chain.push(peer);
  const idx = chain.length - 1 - trustedProxyHops;
  return bareAddress(idx >= 0 ? chain[idx] : chain[0]) ?? peer;
}

/**
 * The rate-limit bucket of a client address, by @nestjs/throttler's own `normalizeIp`: an IPv4-mapped IPv6 address
 * is its IPv4 address, and any other IPv6 address is grouped by its first `ipv6Prefix` bits (`2001:db8:1:2::/64`),
 * because one host commonly owns a whole /64 and could otherwise rotate through it.
 * @param ipv6Prefix prefix length in bits (1–128). Default 64.
 */
export function rateLimitKey(address: string, ipv6Prefix = 64): string {
  return normalizeIp(address, ipv6Prefix);
}

/**
 * The A2A protocol version a request asks for (A2A v1.0 §3.6): the `A2A-Version` header, else the `A2A-Version` query
 * parameter, which §3.6.1 allows "as a request parameter instead of a header". The header wins when both are sent
 * (it is the service parameter's own transmission, §11.2). Parameter names are compared case-insensitively, as service
 * parameter names are (§3.2.6); repeated values are joined with `,`, which no version matches.
 * @returns `undefined` when neither is sent or both are empty (the caller then assumes `0.3`, §3.6.2).
 */
export function requestedA2AVersion(req: HttpRequestLike): string | undefined {
  const h = req.headers['a2a-version'];
  const fromHeader = Array.isArray(h) ? h.join(',') : h;
  if (fromHeader) return fromHeader;
  const url = req.originalUrl ?? req.url ?? req.raw?.url ?? '';
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  const values: string[] = [];
  for (const [k, v] of new URLSearchParams(url.slice(q + 1))) if (k.toLowerCase() === 'a2a-version' && v !== '') values.push(v);
  return values.length ? values.join(',') : undefined;
}

/** Route pattern when known (express `route.path`, fastify `routeOptions.url`), else the path without query. */
export function routeOf(req: HttpRequestLike): string | undefined {
  const pattern = req.routeOptions?.url ?? req.route?.path;
  if (pattern) return pattern;
  const u = req.originalUrl ?? req.url ?? req.raw?.url;
  return u?.split('?')[0];
}
