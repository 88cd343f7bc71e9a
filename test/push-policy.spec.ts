import { PushUrlPolicy, PushUrlRefusedError, classifyAddress, type PushAddressClass, type ResolvedAddress } from 'nestjs-a2a-auth/core';

// Pure: addresses are only classified here, never contacted; host names resolve through an injected lookup
// (and `localhost`, once, through the OS resolver's hosts file).

const lookupOf =
  (table: Record<string, string[]>) =>
  async (host: string): Promise<ResolvedAddress[]> => {
    const a = table[host];
    if (!a) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return a.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

async function refusal(policy: PushUrlPolicy, url: string): Promise<Pick<PushUrlRefusedError, 'reason' | 'detail' | 'message'>> {
  const e = await policy.check(url).then(
    () => undefined,
    (x: unknown) => x,
  );
  if (!(e instanceof PushUrlRefusedError)) throw new Error(`${url} was not refused`);
  return { reason: e.reason, detail: e.detail, message: e.message };
}

const PUBLIC_ONLY = 'the push notification URL must be a public https URL (or an origin the agent allows)';

describe('classifyAddress', () => {
  const table: Array<[string, PushAddressClass]> = [
    ['93.184.215.14', 'public'],
    ['8.8.8.8', 'public'],
    ['2606:4700:4700::1111', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['100.127.255.255', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['::ffff:10.0.0.1', 'private'],
    ['169.254.0.1', 'link_local'],
    ['fe80::1', 'link_local'],
    ['169.254.169.254', 'metadata'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['240.0.0.1', 'reserved'],
    ['192.0.0.192', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['64:ff9b::7f00:1', 'reserved'],
    ['2002:7f00:1::1', 'reserved'],
    ['2001:0:4136:e378::1', 'reserved'],
    ['::127.0.0.1', 'reserved'],
    ['fec0::1', 'reserved'],
    ['not-an-ip', 'reserved'],
  ];
  it.each(table)('%s is %s', (address, cls) => {
    expect(classifyAddress(address)).toBe(cls);
  });
});

describe('PushUrlPolicy', () => {
  const lookup = lookupOf({
    'hooks.example.com': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
    'mixed.example.com': ['93.184.215.14', '127.0.0.1'],
    'mapped.example.com': ['::ffff:169.254.169.254'],
    'office.example.com': ['10.20.30.40'],
    'dev.example.com': ['127.0.0.1'],
  });

  it('accepts a public https URL and returns the first resolved address to connect to', async () => {
    const t = await new PushUrlPolicy({ lookup }).check('https://hooks.example.com/a2a?x=1');
    expect({ host: t.hostname, address: t.address, family: t.family, allowListed: t.allowListed, href: t.url.href }).toEqual({
      host: 'hooks.example.com',
      address: '93.184.215.14',
      family: 4,
      allowListed: false,
      href: 'https://hooks.example.com/a2a?x=1',
    });
  });

  it('refuses a host when any one of its addresses is refused', async () => {
    const p = new PushUrlPolicy({ lookup });
    expect(await refusal(p, 'https://mixed.example.com/')).toEqual({ reason: 'forbidden_address', detail: 'loopback', message: PUBLIC_ONLY });
    expect(await refusal(p, 'https://mapped.example.com/')).toEqual({ reason: 'forbidden_address', detail: 'metadata', message: PUBLIC_ONLY });
  });

  it('sees through the URL spellings of an address (WHATWG host parsing)', async () => {
    const p = new PushUrlPolicy({ lookup });
    for (const url of [
      'https://0x7f.1/',
      'https://127.1/',
      'https://2130706433/',
      'https://0177.0.0.1/',
      'https://[0:0:0:0:0:ffff:7f00:1]/',
      'https://localhost./',
    ]) {
      expect({ url, ...(await refusal(p, url)) }).toMatchObject({ url, reason: 'forbidden_address', message: PUBLIC_ONLY });
    }
  });

  it('unresolvable and refused hosts give the same message (no DNS oracle); the detail is for the log', async () => {
    const p = new PushUrlPolicy({ lookup });
    expect(await refusal(p, 'https://nowhere.example.com/')).toEqual({
      reason: 'unresolvable',
      detail: 'unresolvable: getaddrinfo ENOTFOUND nowhere.example.com',
      message: PUBLIC_ONLY,
    });
    const hang = new PushUrlPolicy({ lookup: () => new Promise(() => undefined), lookupTimeoutMs: 50 });
    const started = Date.now();
    expect(await refusal(hang, 'https://slow.example.com/')).toEqual({
      reason: 'unresolvable',
      detail: 'unresolvable: no answer within 50 ms',
      message: PUBLIC_ONLY,
    });
    expect(Date.now() - started).toBeLessThan(1000);
    const empty = new PushUrlPolicy({ lookup: async () => [] });
    expect((await refusal(empty, 'https://empty.example.com/')).reason).toBe('unresolvable');
  });

  it('http, other schemes, user info and oversized URLs are refused before any lookup', async () => {
    let lookups = 0;
    const p = new PushUrlPolicy({
      lookup: async () => {
        lookups++;
        return [{ address: '93.184.215.14', family: 4 }];
      },
    });
    expect(await refusal(p, 'http://hooks.example.com/')).toEqual({
      reason: 'https_required',
      detail: 'https_required',
      message: 'the push notification URL must use https',
    });
    expect((await refusal(p, 'ws://hooks.example.com/')).reason).toBe('unsupported_scheme');
    expect((await refusal(p, 'javascript:alert(1)')).reason).toBe('unsupported_scheme');
    expect((await refusal(p, 'https://u:p@hooks.example.com/')).reason).toBe('invalid_url');
    expect((await refusal(p, `https://hooks.example.com/${'a'.repeat(2048)}`)).reason).toBe('invalid_url');
    expect((await refusal(p, '/relative')).reason).toBe('invalid_url');
    expect(lookups).toBe(0);
  });

  it('allowPrivateNetworks opens RFC 1918 / ULA / CGNAT only: never loopback, link-local or metadata', async () => {
    const p = new PushUrlPolicy({ lookup, allowPrivateNetworks: true });
    expect((await p.check('https://office.example.com/')).address).toBe('10.20.30.40');
    expect((await p.check('https://[fd12::1]/')).address).toBe('fd12::1');
    for (const [url, detail] of [
      ['https://dev.example.com/', 'loopback'],
      ['https://169.254.1.1/', 'link_local'],
      ['https://169.254.169.254/', 'metadata'],
      ['https://100.100.100.200/', 'metadata'],
    ]) {
      expect(await refusal(p, url)).toEqual({ reason: 'forbidden_address', detail, message: PUBLIC_ONLY });
    }
  });

  it('an allowed origin may use http and loopback or private addresses, for that exact origin only, never metadata', async () => {
    const p = new PushUrlPolicy({ lookup, allowedOrigins: ['http://dev.example.com:8080', 'http://127.0.0.1:9000/', 'http://169.254.169.254'] });
    expect((await p.check('http://dev.example.com:8080/hook')).allowListed).toBe(true);
    expect((await p.check('http://127.0.0.1:9000/hook')).address).toBe('127.0.0.1');
    expect((await refusal(p, 'http://dev.example.com:8081/hook')).reason).toBe('https_required');
    expect((await refusal(p, 'https://dev.example.com:8080/hook')).detail).toBe('loopback');
    expect((await refusal(p, 'http://127.0.0.1:9001/hook')).reason).toBe('https_required');
    expect(await refusal(p, 'http://169.254.169.254/latest/meta-data/')).toEqual({ reason: 'forbidden_address', detail: 'metadata', message: PUBLIC_ONLY });
  });

  it('an allowed localhost origin is resolved by the OS resolver (the hosts file) to a loopback address', async () => {
    const t = await new PushUrlPolicy({ allowedOrigins: ['http://localhost:9'] }).check('http://localhost:9/hook');
    expect(classifyAddress(t.address)).toBe('loopback');
  });

  it('refuses malformed allowedOrigins and lookup deadlines at construction', () => {
    for (const o of [
      'hooks.example.com',
      'https://hooks.example.com/path',
      'https://u@hooks.example.com',
      'ftp://hooks.example.com',
      'https://h.example.com/?q',
    ]) {
      expect(() => new PushUrlPolicy({ allowedOrigins: [o] })).toThrow(/must be a bare http\(s\) origin|is not an absolute URL/);
    }
    expect(() => new PushUrlPolicy({ lookupTimeoutMs: 0 })).toThrow('push notification lookupTimeoutMs must be a positive number of milliseconds');
  });
});
