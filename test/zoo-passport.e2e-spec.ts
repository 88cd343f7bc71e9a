import { Controller, Get, Req, UseGuards } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import { A2A_JWT_STRATEGY } from 'nestjs-a2a-auth';
import { PLATFORMS, startTestApp, type TestApp } from './fixtures/test-app';
import { createZooWorld, sendRaw, ZOO_CASES, zooAuthOptions, type ZooWorld } from './fixtures/zoo';

/** The strategy used directly, without the library's guard. */
@Controller('p')
class PassportOnlyController {
  @UseGuards(AuthGuard(A2A_JWT_STRATEGY))
  @Get('me')
  me(@Req() req: { user: { clientId?: string; issuer: string } }) {
    return { clientId: req.user.clientId, issuer: req.user.issuer };
  }
}

// The Passport strategy on its own (AuthGuard('a2a-jwt'), globalGuard: false) still fails closed on the whole zoo:
// the same accept/refuse decision as the guard, as Nest's plain 401 (no RFC 6750 headers), never a 5xx.
describe.each(PLATFORMS)('the a2a-jwt strategy used directly on %s', (platform) => {
  let w: ZooWorld;
  let app: TestApp;

  beforeAll(async () => {
    w = await createZooWorld();
    app = await startTestApp({ platform, auth: zooAuthOptions(w), controllers: [PassportOnlyController], globalGuard: false });
  });
  afterAll(async () => {
    await app?.close();
    await w?.iss1.stop();
    await w?.iss2.stop();
  });

  const cases = ZOO_CASES.filter((c) => c.app !== 'query' && !c.name.includes('required scope'));
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
    const req = await c.make(w);
    const res = await sendRaw(app.url, { ...req, path: req.path.replace('/t/me', '/p/me') });
    if (c.reason === 'ok') {
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ clientId: 'client-a' });
    } else {
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ message: 'Unauthorized', statusCode: 401 });
    }
  });
});
