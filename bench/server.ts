/**
 * Bench server child: one Nest app per setup with the same handler on `GET /public` and `GET /protected`.
 * Started by bench/orchestrator.ts with `fork`; reports `{ port }` over IPC once listening on 127.0.0.1.
 * Logger off, audit successes off: the bench measures auth, not logging.
 */
import 'reflect-metadata';
import { Controller, Get, Injectable, Module, UnauthorizedException, UseGuards, type CanActivate, type ExecutionContext, type Type } from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { AuthGuard, PassportStrategy } from '@nestjs/passport';
import { ExtractJwt, Strategy } from 'passport-jwt';
import { passportJwtSecret } from 'jwks-rsa';
import { auth } from 'express-oauth2-jwt-bearer';
import { A2AAuthModule, Public, RequireScopes } from '../libs/a2a-auth/src';
import { createDPoPChecker, type DPoPChecker } from '../libs/a2a-auth/src/core';
import { BENCH_DPOP_ORIGIN, BENCH_SCOPE, type ServerConfig } from './setups';

const cfg = JSON.parse(process.env.BENCH_SERVER ?? '{}') as ServerConfig;

/** The one handler every route of every setup serves. */
const BODY = { ok: true };
function handler() {
  return BODY;
}

// ---- ours: the module's global guard; @Public on the public route, a scope on the protected one.
@Controller()
class OursController {
  @Public()
  @Get('public')
  pub() {
    return handler();
  }

  @RequireScopes(BENCH_SCOPE)
  @Get('protected')
  prot() {
    return handler();
  }
}

// ---- bare: no guard at all; floor: a global guard that only sets request.user.
@Controller()
class BareController {
  @Get('public')
  pub() {
    return handler();
  }

  @Get('protected')
  prot() {
    return handler();
  }
}

const FLOOR_USER = Object.freeze({ clientId: 'floor' });
@Injectable()
class FloorGuard implements CanActivate {
  canActivate(ctx: ExecutionContext): boolean {
    ctx.switchToHttp().getRequest<{ user?: unknown }>().user = FLOOR_USER;
    return true;
  }
}

// ---- stock: the @nestjs/passport recipe with passport-jwt + jwks-rsa's passportJwtSecret.
@Injectable()
class StockJwtStrategy extends PassportStrategy(Strategy, 'stock-jwt') {
  constructor() {
    super({
      jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
      secretOrKeyProvider: passportJwtSecret({ jwksUri: cfg.jwksUri, cache: true, rateLimit: true, jwksRequestsPerMinute: 10 }),
      issuer: cfg.issuer,
      audience: cfg.audience,
      algorithms: ['RS256'],
    });
  }
  validate(payload: unknown) {
    return payload;
  }
}

@Controller()
class StockController {
  @Get('public')
  pub() {
    return handler();
  }

  @UseGuards(AuthGuard('stock-jwt'))
  @Get('protected')
  prot() {
    return handler();
  }
}

// ---- Auth0's express-oauth2-jwt-bearer (jose inside), wrapped in a guard (express only).
@Injectable()
class Auth0Guard implements CanActivate {
  private readonly mw = auth({ issuer: cfg.issuer, jwksUri: cfg.jwksUri, audience: cfg.audience, tokenSigningAlg: 'RS256' });
  canActivate(ctx: ExecutionContext): Promise<boolean> {
    const http = ctx.switchToHttp();
    return new Promise((resolve, reject) =>
      this.mw(http.getRequest(), http.getResponse(), (err?: unknown) => (err ? reject(new UnauthorizedException()) : resolve(true))),
    );
  }
}

@Controller()
class Auth0Controller {
  @Get('public')
  pub() {
    return handler();
  }

  @UseGuards(Auth0Guard)
  @Get('protected')
  prot() {
    return handler();
  }
}

/**
 * `ours-cache-proof`: checks the request's `x-bench-pad` header as one DPoP proof (the same checker, policy and in-memory
 * replay cache as the `ours-dpop` server) after the library's guard, so the server does "a bearer token through the
 * cache plus one proof verification" under the same load as the DPoP setup.
 */
@Injectable()
class ProofCheckGuard implements CanActivate {
  private readonly checker: DPoPChecker = createDPoPChecker({
    algorithms: ['ES256', 'PS256', 'RS256', 'EdDSA'],
    iatWindow: 86_400,
    clockTolerance: 5,
    maxReplayEntries: (cfg.dpopProofs ?? 0) + 10_000,
  });
  private readonly uri = `${BENCH_DPOP_ORIGIN}/protected`;

  canActivate(ctx: ExecutionContext): boolean {
    const req = ctx.switchToHttp().getRequest<{ headers: Record<string, string | undefined>; method: string }>();
    const pad = req.headers['x-bench-pad'];
    if (pad === undefined) return true; // the parent's sanity requests
    void this.checker.check(cfg.dpopToken!, cfg.dpopJkt!, { proofs: [pad], method: req.method, uri: this.uri });
    return true;
  }
}

function moduleFor(c: ServerConfig): Type {
  if (c.setup === 'bare') {
    @Module({ controllers: [BareController] })
    class BareModule {}
    return BareModule;
  }
  if (c.setup === 'floor') {
    @Module({ controllers: [BareController], providers: [{ provide: APP_GUARD, useClass: FloorGuard }] })
    class FloorModule {}
    return FloorModule;
  }
  if (c.setup === 'stock-passport') {
    @Module({ controllers: [StockController], providers: [StockJwtStrategy] })
    class StockModule {}
    return StockModule;
  }
  if (c.setup === 'auth0') {
    @Module({ controllers: [Auth0Controller], providers: [Auth0Guard] })
    class Auth0Module {}
    return Auth0Module;
  }
  @Module({
    imports: [
      A2AAuthModule.forRoot({
        issuer: c.issuer,
        audience: c.audience,
        jwksUri: c.jwksUri,
        scopes: { [BENCH_SCOPE]: 'Read bench data' },
        audit: { successes: false },
        tokenCache: { enabled: c.setup !== 'ours-nocache' && c.setup !== 'ours-offthread' },
        verifyOffThread: c.setup === 'ours-offthread',
        // The proofs are minted before the run, so their iat window spans the whole bench; the check costs the same.
        ...(c.setup === 'ours-dpop'
          ? { dpop: { mode: 'allowed' as const, iatWindow: 86_400, maxReplayEntries: (c.dpopProofs ?? 0) + 10_000, publicOrigin: BENCH_DPOP_ORIGIN } }
          : {}),
        // High enough never to refuse: what is measured is the cost of counting.
        ...(c.setup === 'ours-limit-memory' || c.setup === 'ours-limit-redis' ? { clientRateLimit: { limit: 1_000_000_000, ttl: 1 } } : {}),
        ...(c.setup === 'ours-limit-redis' ? { store: { redis: { url: c.redisUrl! } } } : {}),
      }),
    ],
    controllers: [OursController],
    providers: c.setup === 'ours-cache-proof' ? [{ provide: APP_GUARD, useClass: ProofCheckGuard }] : [],
  })
  class OursModule {}
  return OursModule;
}

async function main(): Promise<void> {
  const adapter = cfg.platform === 'fastify' ? new FastifyAdapter() : new ExpressAdapter();
  const app = await NestFactory.create(moduleFor(cfg), adapter as never, { logger: false });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  process.send?.({ port });
  // The parent asks for the CPU time used so far (µs), to report server CPU per request.
  process.on('message', (m: { cpu?: boolean }) => {
    if (m?.cpu) {
      const u = process.cpuUsage();
      process.send?.({ cpuMicros: u.user + u.system });
    }
  });
  process.on('disconnect', () => void app.close().finally(() => process.exit(0)));
  process.on('SIGTERM', () => void app.close().finally(() => process.exit(0)));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
