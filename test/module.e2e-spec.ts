import { Controller, Get, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import request from 'supertest';
import { A2AAuthModule, A2ACaller, type A2AAuthModuleOptions } from 'nestjs-a2a-auth';
import { generateTestKey } from './fixtures/keys';
import { JwksServer } from './fixtures/jwks-server';
import { mintToken } from './fixtures/tokens';
import { PLATFORMS } from './fixtures/test-app';

@Controller()
class MeController {
  @Get('me')
  me(@A2ACaller() c: A2ACaller) {
    return { clientId: c.clientId };
  }
}

@Injectable()
class FakeConfig {
  values: Record<string, string> = {};
  get(k: string) {
    return this.values[k];
  }
}

describe.each(PLATFORMS)('A2AAuthModule.forRootAsync on %s', (platform) => {
  let jwks: JwksServer;
  beforeAll(async () => {
    jwks = await new JwksServer().start();
  });
  afterAll(() => jwks.stop());

  async function boot(factoryResult: () => A2AAuthModuleOptions) {
    @Module({ providers: [FakeConfig], exports: [FakeConfig] })
    class ConfigLikeModule {}
    @Module({
      imports: [A2AAuthModule.forRootAsync({ imports: [ConfigLikeModule], inject: [FakeConfig], useFactory: async (_c: FakeConfig) => factoryResult() })],
      controllers: [MeController],
    })
    class AppModule {}
    const app = await NestFactory.create(AppModule, (platform === 'express' ? new ExpressAdapter() : new FastifyAdapter()) as never, {
      logger: false,
      abortOnError: false,
    });
    await app.listen(0, '127.0.0.1');
    return app;
  }

  it('configures the guard from an async factory (no jwksUri: discovered from the issuer metadata)', async () => {
    const key = generateTestKey();
    jwks.keys = [key.publicJwk];
    const app = await boot(() => ({ issuer: jwks.issuer, audience: 'aud-1' }));
    try {
      const url = `http://127.0.0.1:${app.getHttpServer().address().port}`;
      const tok = await mintToken({ key, issuer: jwks.issuer, audience: 'aud-1' });
      const ok = await request(url).get('/me').set('Authorization', `Bearer ${tok}`);
      expect(ok.status).toBe(200);
      expect(ok.body).toEqual({ clientId: 'client-a' });
      expect(jwks.discoveryFetches).toBeGreaterThanOrEqual(1);
      const none = await request(url).get('/me');
      expect(none.status).toBe(401);
    } finally {
      await app.close();
    }
  });

  it('refuses to boot with a message naming the option', async () => {
    await expect(boot(() => ({ issuer: jwks.issuer, audience: '' }))).rejects.toThrow(
      'nestjs-a2a-auth: invalid option `audience`: is required and must not be empty',
    );
    await expect(boot(() => ({ issuer: jwks.issuer, audience: 'a', algorithms: ['HS256'] }))).rejects.toThrow('invalid option `algorithms`');
  });
});
