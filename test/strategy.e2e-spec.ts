import { Controller, Get, Req, UseGuards } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import request from 'supertest';
import { A2A_JWT_STRATEGY, type A2ACaller } from 'nestjs-a2a-auth';
import { useIssuerApp } from './fixtures/auth-harness';
import { PLATFORMS } from './fixtures/test-app';

@Controller()
class PassportController {
  @UseGuards(AuthGuard(A2A_JWT_STRATEGY))
  @Get('passport')
  me(@Req() req: { user: A2ACaller }) {
    return { clientId: req.user.clientId, scopes: req.user.scopes };
  }

  @Get('open')
  open() {
    return { open: true };
  }
}

describe.each(PLATFORMS)("the exported 'a2a-jwt' strategy with @nestjs/passport AuthGuard on %s (globalGuard: false)", (platform) => {
  const env = useIssuerApp(() => ({ platform, audience: 'aud-x', controllers: [PassportController], globalGuard: false }));

  it('verifies with the same checks and sets request.user', async () => {
    const tok = await env.idp.mint({ claims: { scope: 'a b' } });
    const res = await request(env.app.url).get('/passport').set('Authorization', `Bearer ${tok}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ clientId: 'client-a', scopes: ['a', 'b'] });
  });

  it('rejects a bad token with 401 (never 500), including a failed claim check in validate()', async () => {
    const wrongAud = await env.idp.mint({ audience: 'aud-y' });
    const noExp = await env.idp.mint({ claims: { exp: undefined } });
    for (const tok of [wrongAud, noExp, 'abc.def.ghi']) {
      const res = await request(env.app.url).get('/passport').set('Authorization', `Bearer ${tok}`);
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ message: 'Unauthorized', statusCode: 401 });
    }
  });

  it('without the global guard, unannotated routes are open (the user opted out)', async () => {
    const res = await request(env.app.url).get('/open');
    expect(res.status).toBe(200);
  });
});
