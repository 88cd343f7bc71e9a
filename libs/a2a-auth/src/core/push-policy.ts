import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/**
 * What an IP address is, for the push-notification (webhook) policy. Only `public` is contacted by default.
 * - `loopback`: 127.0.0.0/8, ::1.
 * - `private`: RFC 1918 (10/8, 172.16/12, 192.168/16), RFC 6598 CGNAT (100.64/10), RFC 4193 ULA (fc00::/7).
 * - `link_local`: 169.254.0.0/16, fe80::/10.
 * - `metadata`: cloud instance-metadata endpoints (169.254.169.254, fd00:ec2::254, 100.100.100.200).
 * - `unspecified`: 0.0.0.0/8, ::.
 * - `multicast`: 224.0.0.0/4, ff00::/8.
 * - `reserved`: broadcast and reserved (240.0.0.0/4), IETF protocol assignments (192.0.0.0/24), documentation
 *   (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32), benchmarking (198.18/15), discard (100::/64),
 *   deprecated site-local (fec0::/10), and IPv6 forms that embed an IPv4 address the check cannot see through
 *   (NAT64 64:ff9b::/96 and 64:ff9b:1::/48, 6to4 2002::/16, Teredo 2001::/32, IPv4-compatible ::/96).
 * IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are classified as the IPv4 address they carry.
 */
export type PushAddressClass = 'public' | 'loopback' | 'private' | 'link_local' | 'metadata' | 'unspecified' | 'multicast' | 'reserved';

type Range = [string, number];
const RANGES: Array<[Exclude<PushAddressClass, 'public'>, Range[], Range[]]> = [
  // Most specific first: the metadata addresses sit inside link-local, CGNAT and ULA ranges.
  [
    'metadata',
    [
      ['169.254.169.254', 32],
      ['100.100.100.200', 32],
    ],
    [['fd00:ec2::254', 128]],
  ],
  ['loopback', [['127.0.0.0', 8]], [['::1', 128]]],
  ['unspecified', [['0.0.0.0', 8]], [['::', 128]]],
  ['link_local', [['169.254.0.0', 16]], [['fe80::', 10]]],
  [
    'private',
    [
      ['10.0.0.0', 8],
      ['172.16.0.0', 12],
      ['192.168.0.0', 16],
      ['100.64.0.0', 10],
    ],
    [['fc00::', 7]],
  ],
  ['multicast', [['224.0.0.0', 4]], [['ff00::', 8]]],
  [
    'reserved',
    [
      ['240.0.0.0', 4],
      ['192.0.0.0', 24],
      ['192.0.2.0', 24],
      ['198.51.100.0', 24],
      ['203.0.113.0', 24],
      ['198.18.0.0', 15],
    ],
    [
      ['2001:db8::', 32],
      ['100::', 64],
      ['fec0::', 10],
      ['64:ff9b::', 96],
      ['64:ff9b:1::', 48],
      ['2002::', 16],
      ['2001::', 32],
      ['::', 96],
    ],
  ],
];
const LISTS: Array<[Exclude<PushAddressClass, 'public'>, BlockList]> = RANGES.map(([cls, v4, v6]) => {
  const list = new BlockList();
  for (const [net, prefix] of v4) list.addSubnet(net, prefix, 'ipv4');
  for (const [net, prefix] of v6) list.addSubnet(net, prefix, 'ipv6');
  return [cls, list];
});

/**
 * Classifies an IP address literal (Node's `BlockList` also matches IPv4-mapped IPv6 forms against the IPv4 ranges).
 * @returns the class; a string that is not an IP address is `reserved` (fail closed).
 */
export function classifyAddress(address: string): PushAddressClass {
  const family = isIP(address);
  if (family === 0) return 'reserved';
  const type = family === 4 ? 'ipv4' : 'ipv6';
  for (const [cls, list] of LISTS) if (list.check(address, type)) return cls;
  return 'public';
}

/** One resolved address of a webhook host, as `dns.lookup(host, { all: true })` returns it. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to all of its addresses. The default is `node:dns` `lookup(host, { all: true })` (the OS resolver). */
export type PushHostLookup = (hostname: string) => Promise<ResolvedAddress[]>;

/** Options of {@link PushUrlPolicy}. */
export interface PushUrlPolicyOptions {
  /**
   * Exact origins (`scheme://host[:port]`, as `new URL(u).origin` spells them) that are trusted webhook receivers.
   * A URL with one of these origins may use `http:` and may resolve to loopback, private, link-local or reserved
   * addresses; never to a metadata, unspecified or multicast address. Default none.
   */
  allowedOrigins?: readonly string[];
  /** Also accept `private` addresses (RFC 1918, CGNAT, ULA) for any host. Default `false`. */
  allowPrivateNetworks?: boolean;
  /** Host name resolution. Default `node:dns` `lookup` with `all: true`. */
  lookup?: PushHostLookup;
  /** Deadline of one resolution, in milliseconds. Default `5000`. */
  lookupTimeoutMs?: number;
}

/** Longest accepted webhook URL, in characters. */
export const MAX_PUSH_URL_LENGTH = 2048;

/**
 * Why a webhook URL was refused.
 * - `invalid_url`: not an absolute URL, longer than {@link MAX_PUSH_URL_LENGTH}, or with user info (`user:pass@`).
 * - `unsupported_scheme`: not `http:` or `https:`.
 * - `https_required`: `http:` for an origin that is not allow-listed.
 * - `unresolvable`: the host did not resolve (or not within the deadline).
 * - `forbidden_address`: the host is, or resolves to (any of its addresses), an address the policy refuses.
 */
export type PushUrlRefusal = 'invalid_url' | 'unsupported_scheme' | 'https_required' | 'unresolvable' | 'forbidden_address';

/**
 * A webhook URL the policy refuses. `message` is safe to return to the caller: for `unresolvable` and
 * `forbidden_address` it is one generic text, so the answer is no oracle for the agent's internal DNS. `detail`
 * (the address class, the resolver error) is for the operator's log only; neither holds the URL's path or query.
 */
export class PushUrlRefusedError extends Error {
  constructor(
    readonly reason: PushUrlRefusal,
    message: string,
    readonly detail: string = reason,
  ) {
    super(message);
    this.name = 'PushUrlRefusedError';
  }
}

/** A webhook URL that passed the policy, with the address to connect to. */
export interface CheckedPushTarget {
  url: URL;
  /** The host name without IPv6 brackets or a trailing dot (the `Host` header and TLS server name use `url.host`). */
  hostname: string;
  /** The address to connect to: the first resolved address; every resolved address passed the policy. */
  address: string;
  family: 4 | 6;
  /** The URL's origin is in `allowedOrigins`. */
  allowListed: boolean;
}

const PUBLIC_ONLY = 'the push notification URL must be a public https URL (or an origin the agent allows)';
/** Address classes an allow-listed origin may still never reach. */
const NEVER: ReadonlySet<PushAddressClass> = new Set(['metadata', 'unspecified', 'multicast']);

/**
 * The SSRF policy for push-notification webhooks (A2A v1.0 §13.2: reject private, localhost and link-local
 * addresses; allow-lists): http(s) only, https unless the origin is allow-listed, and every address the host resolves
 * to must be allowed. The caller must connect to {@link CheckedPushTarget.address} (not resolve the name again), so a
 * DNS answer that changes between the check and the connection (DNS rebinding) cannot reach an internal address.
 * Check when a config is stored and again before each delivery.
 */
export class PushUrlPolicy {
  private readonly allowed: ReadonlySet<string>;
  private readonly allowPrivate: boolean;
  private readonly lookup: PushHostLookup;
  private readonly lookupTimeoutMs: number;

  /** @throws Error when an `allowedOrigins` entry is not a bare http(s) origin, or `lookupTimeoutMs` is not positive. */
  constructor(o: PushUrlPolicyOptions = {}) {
    this.allowed = new Set((o.allowedOrigins ?? []).map(normalizeOrigin));
    this.allowPrivate = o.allowPrivateNetworks === true;
    this.lookup = o.lookup ?? defaultLookup;
    this.lookupTimeoutMs = o.lookupTimeoutMs ?? 5000;
    if (!(this.lookupTimeoutMs > 0)) throw new Error('push notification lookupTimeoutMs must be a positive number of milliseconds');
  }

  /**
   * Checks a webhook URL and resolves its host.
   * @throws PushUrlRefusedError when the policy refuses it.
   */
  async check(raw: string): Promise<CheckedPushTarget> {
    const url = this.parse(raw);
    const allowListed = this.allowed.has(url.origin);
    const hostname = bareHost(url.hostname);
    if (!allowListed && (hostname === 'localhost' || hostname.endsWith('.localhost'))) {
      // RFC 6761 §6.3: these names are loopback whatever a resolver says.
      throw new PushUrlRefusedError('forbidden_address', PUBLIC_ONLY, 'loopback (localhost name)');
    }
    const addresses = isIP(hostname) ? [{ address: hostname, family: isIP(hostname) as 4 | 6 }] : await this.resolve(hostname);
    for (const a of addresses) {
      const cls = classifyAddress(a.address);
      if (!this.permits(cls, allowListed)) throw new PushUrlRefusedError('forbidden_address', PUBLIC_ONLY, cls);
    }
    return { url, hostname, address: addresses[0].address, family: addresses[0].family, allowListed };
  }

  /** The checks that need no resolution (syntax, scheme, https). @throws PushUrlRefusedError */
  parse(raw: string): URL {
    if (typeof raw !== 'string' || raw === '' || raw.length > MAX_PUSH_URL_LENGTH) {
      throw new PushUrlRefusedError('invalid_url', `the push notification URL must be an absolute URL of at most ${MAX_PUSH_URL_LENGTH} characters`);
    }
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new PushUrlRefusedError('invalid_url', 'the push notification URL is not an absolute URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new PushUrlRefusedError('unsupported_scheme', 'the push notification URL must use https');
    if (url.username || url.password) throw new PushUrlRefusedError('invalid_url', 'the push notification URL must not contain user information');
    if (!url.hostname) throw new PushUrlRefusedError('invalid_url', 'the push notification URL has no host');
    if (url.protocol === 'http:' && !this.allowed.has(url.origin)) throw new PushUrlRefusedError('https_required', 'the push notification URL must use https');
    return url;
  }

  private permits(cls: PushAddressClass, allowListed: boolean): boolean {
    if (cls === 'public') return true;
    if (allowListed) return !NEVER.has(cls);
    return cls === 'private' && this.allowPrivate;
  }

  private async resolve(hostname: string): Promise<ResolvedAddress[]> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.lookupTimeoutMs} ms`)), this.lookupTimeoutMs);
    });
    try {
      const found = await Promise.race([this.lookup(hostname), deadline]);
      const valid = Array.isArray(found) ? found.filter((a) => a && typeof a.address === 'string' && isIP(a.address) !== 0) : [];
      if (valid.length === 0) throw new Error('no address');
      return valid.map((a) => ({ address: a.address, family: isIP(a.address) as 4 | 6 }));
    } catch (e) {
      throw new PushUrlRefusedError('unresolvable', PUBLIC_ONLY, `unresolvable: ${(e as Error)?.message ?? 'lookup failed'}`);
    } finally {
      clearTimeout(timer);
    }
  }
}

async function defaultLookup(hostname: string): Promise<ResolvedAddress[]> {
  return (await dnsLookup(hostname, { all: true })) as ResolvedAddress[];
}

function bareHost(h: string): string {
  const s = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
  return s.endsWith('.') ? s.slice(0, -1) : s;
}

/** `scheme://host[:port]` exactly, as `URL.origin` spells it. @throws Error for anything else. */
function normalizeOrigin(o: string): string {
  let u: URL;
  try {
    u = new URL(o);
  } catch {
    throw new Error(`push notification allowedOrigins: ${JSON.stringify(o)} is not an absolute URL`);
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.username || u.password || u.search || u.hash || (u.pathname !== '/' && u.pathname !== '')) {
    throw new Error(`push notification allowedOrigins: ${JSON.stringify(o)} must be a bare http(s) origin such as https://hooks.example.com:8443`);
  }
  return u.origin;
}
