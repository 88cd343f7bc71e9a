import { Agent, get } from 'node:http';
import { useIssuerApp } from './fixtures/auth-harness';
import { generateTestKey, type TestKey } from './fixtures/keys';
import { PLATFORMS } from './fixtures/test-app';
import { GuardTestController, TEST_SCOPES } from './fixtures/test-controllers';

const AUD = 'http://127.0.0.1/expense-agent';
const N = 500;
const SLOW_MS = 1500;

/** Result of {@link fire}. */
interface Fired {
  statuses: number[];
  /** Requests fully sent, and responses received, while the JWKS fetch was certainly still pending. */
  sentWhilePending: number;
  answeredWhilePending: number;
}

/**
 * Fires all requests at once (one socket each; the agent bounds them to N) and resolves to their statuses.
 * The fetch cannot start before the first request, and the JWKS answers after SLOW_MS, so at
 * SLOW_MS - 300 ms after the start the fetch is still pending: requests sent by then overlap it.
 */
function fire(url: string, tokens: string[]): Promise<Fired> {
  const agent = new Agent({ keepAlive: false, maxSockets: N });
  let sent = 0;
  let answered = 0;
  let probe: { sent: number; answered: number } | undefined;
  const timer = setTimeout(() => (probe = { sent, answered }), SLOW_MS - 300);
  return Promise.all(
    tokens.map(
      (tok) =>
        new Promise<number>((resolve, reject) => {
          const req = get(url, { agent, headers: { authorization: `Bearer ${tok}` }, timeout: 20_000 }, (res) => {
            answered++;
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('finish', () => sent++);
          req.on('timeout', () => req.destroy(new Error('request timed out')));
          req.on('error', reject);
        }),
    ),
  )
    .then((statuses) => ({ statuses, sentWhilePending: probe?.sent ?? -1, answeredWhilePending: probe?.answered ?? -1 }))
    .finally(() => {
      clearTimeout(timer);
      agent.destroy();
    });
}

describe.each(PLATFORMS)('single-flight JWKS fetches on %s', (platform) => {
  const env = useIssuerApp(() => ({
    platform,
    audience: AUD,
    auth: { scopes: TEST_SCOPES, audit: { successes: false }, jwksCooldown: 0 },
    controllers: [GuardTestController],
  }));
  const mintMany = (key: TestKey) => Promise.all(Array.from({ length: N }, () => env.idp.mint({ key })));

  it(`${N} concurrent first requests (keys never fetched, slow JWKS) cause exactly 1 JWKS fetch`, async () => {
    const { jwks, key } = env.idp;
    const tokens = await mintMany(key); // distinct tokens: no help from the verified-token cache
    jwks.mode = { slowMs: SLOW_MS };
    expect(jwks.jwksFetches).toBe(0);
    const r = await fire(`${env.app.url}/t/me`, tokens);
    expect(r.statuses.filter((s) => s === 200)).toHaveLength(N);
    expect(r.sentWhilePending).toBe(N); // all N overlapped the one fetch
    expect(r.answeredWhilePending).toBe(0);
    expect(jwks.jwksFetches).toBe(1);
  });

  it(`${N} concurrent requests with a kid that just appeared in the JWKS cause exactly 1 refetch`, async () => {
    const { jwks, key } = env.idp;
    const rotated = generateTestKey('RS256');
    jwks.keys = [key.publicJwk, rotated.publicJwk];
    const tokens = await mintMany(rotated);
    const before = jwks.jwksFetches;
    const r = await fire(`${env.app.url}/t/me`, tokens);
    expect(r.statuses.filter((s) => s === 200)).toHaveLength(N);
    expect(r.sentWhilePending).toBe(N);
    expect(r.answeredWhilePending).toBe(0);
    expect(jwks.jwksFetches).toBe(before + 1);
  });
});
