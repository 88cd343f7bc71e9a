import { ClientCredentialsError } from './errors';
import { isLoopback } from './token-provider';

/**
 * Where a bearer token may be sent, besides the origin the caller named (the Agent Card's origin for
 * `connectA2AAgent`). A card is data from the network: without this rule, a card fetched from origin A that names an
 * interface on origin B would make B receive the caller's token.
 */
export interface BearerDestinationOptions {
  /**
   * More origins (`scheme://host[:port]`, RFC 6454) that may receive the bearer token, e.g. `['https://api.example.com']`
   * for a card on `https://example.com` whose interfaces are on `api.`. Default none.
   * @throws ClientCredentialsError at creation for an entry that is not an http(s) origin, or is plain `http:` on a
   *   non-loopback host (a token is never sent there).
   */
  allowedOrigins?: readonly string[];
  /**
   * Also allow any URL this returns `true` for (it gets the absolute URL). Default none. A throwing hook refuses.
   * It cannot allow plain `http:` to a non-loopback host.
   */
  trustBearerUrl?: (url: string) => boolean;
}

/** Why a URL may not receive the bearer token. */
export type DestinationRefusal = 'not_http' | 'insecure_http' | 'untrusted_origin';

/** A decision about one URL: `undefined` when it may receive the token, else why not, in words too. */
export interface DestinationCheck {
  (url: string): { reason: DestinationRefusal; why: string } | undefined;
}

/** The origin (`scheme://host[:port]`) of an http(s) URL, or `undefined`. */
export function httpOrigin(url: string): string | undefined {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.origin : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The rule for every request that carries a bearer token (RFC 6750 §5.3: a client must not leak bearer tokens to
 * unintended parties, and must use TLS):
 * 1. the URL is absolute `https:`, or `http:` on a loopback host; plain `http:` elsewhere is never allowed;
 * 2. its origin is one of `ownOrigins` or `allowedOrigins`, or `trustBearerUrl` returns true for it.
 *
 * @param ownOrigins the origins the caller named (e.g. the card URL's origin).
 * @throws ClientCredentialsError for a malformed `allowedOrigins` entry.
 */
export function bearerDestinationCheck(o: BearerDestinationOptions, ownOrigins: readonly string[] = []): DestinationCheck {
  const allowed = new Set<string>(ownOrigins);
  for (const raw of o.allowedOrigins ?? []) allowed.add(parseOrigin(raw));
  const hook = o.trustBearerUrl;
  return (url: string) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return { reason: 'not_http', why: 'it is not an absolute URL' };
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return { reason: 'not_http', why: `its scheme ${u.protocol} is not http(s)` };
    if (u.protocol === 'http:' && !isLoopback(u.hostname)) return { reason: 'insecure_http', why: 'it is plain http to a non-loopback host' };
    if (allowed.has(u.origin)) return undefined;
    let ok: boolean;
    try {
      ok = hook?.(u.href) === true;
    } catch {
      ok = false; // a throwing hook refuses
    }
    if (ok) return undefined;
    const names = [...allowed];
    return {
      reason: 'untrusted_origin',
      why: `its origin ${u.origin} is not ${names.length ? names.join(', ') : 'an allowed origin'} (see allowedOrigins / trustBearerUrl)`,
    };
  };
}

function parseOrigin(raw: string): string {
  let u: URL | undefined;
  try {
    u = new URL(raw);
  } catch {
    u = undefined;
  }
  const bad = (why: string) => new ClientCredentialsError(`allowedOrigins entry ${JSON.stringify(String(raw).slice(0, 200))} ${why}`);
  if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) throw bad('is not an http(s) origin');
  if (u.username || u.password || u.search || u.hash || (u.pathname !== '/' && u.pathname !== '')) throw bad('is not an origin (scheme://host[:port] only)');
  if (u.protocol === 'http:' && !isLoopback(u.hostname)) throw bad('is plain http on a non-loopback host: a bearer token is never sent there');
  return u.origin;
}
