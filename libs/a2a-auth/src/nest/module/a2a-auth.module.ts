import { ConfigurableModuleBuilder, Logger, Module } from '@nestjs/common';
import { APP_GUARD, DiscoveryModule } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';
import { getOptionsToken } from '@nestjs/throttler';
import { A2A_AUDIT_SINK, A2A_AUTH_RESOLVED_OPTIONS, A2A_AUTH_RUNTIME, A2A_SHARED_STORE, A2A_VERIFIER } from '../constants';
import { createAuthRuntime, type AuthRuntime } from '../../core/runtime';
import { resolveOptions, type A2AAuthModuleOptions, type ResolvedOptions } from '../../core/options';
import { KeyRegistry } from '../../core/key-registry';
import { A2AJwtStrategy } from '../passport/a2a-jwt.strategy';
import { A2AAuthGuard } from '../guard/a2a-auth.guard';
import { VerifiedTokenCache } from '../../core/token-cache';
import { AuthAuditService } from '../audit/auth-audit.service';
import { LoggerAuditSink } from '../audit/logger-audit-sink';
import { SkillRegistry } from '../card/skill-registry';
import { AgentCardService } from '../card/card.service';
import { CardThrottlerGuard } from '../card/card-throttler.guard';
import { AgentCardController } from '../card/card.controller';
import { ResourceMetadataController } from '../card/resource-metadata.controller';
import { ExtendedCardController } from '../card/extended-card.controller';
import { ClientRateLimiter } from '../guard/client-rate-limiter';
import { STORE_PROVIDERS } from '../store/store.providers';
import { RateLimitedLog } from '../audit/rate-limited-log';
import type { SharedStore } from '../../core/store';

/** Extra `forRoot`/`forRootAsync` settings that shape the module itself (not the options object). */
export interface A2AAuthModuleExtras {
  /** Register {@link A2AAuthGuard} as a global `APP_GUARD` (every route needs a token unless `@Public()`). Default true. */
  globalGuard?: boolean;
  /** Make the module's exports (guard, authenticator, card service…) visible app-wide. Default true. */
  isGlobal?: boolean;
}

/** @internal */
export const {
  ConfigurableModuleClass,
  MODULE_OPTIONS_TOKEN: A2A_AUTH_MODULE_OPTIONS,
  OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<A2AAuthModuleOptions>({ moduleName: 'A2AAuth' })
  .setClassMethodName('forRoot')
  .setExtras<A2AAuthModuleExtras>({ globalGuard: true, isGlobal: true }, (def, extras) => ({
    ...def,
    global: extras.isGlobal !== false,
    providers: [...(def.providers ?? []), ...(extras.globalGuard !== false ? [{ provide: APP_GUARD, useExisting: A2AAuthGuard }] : [])],
  }))
  .build();

/**
 * The dynamic module that makes a Nest app an OAuth 2.0 resource server for A2A (RFC 6750, RFC 9068, RFC 9728).
 *
 * - `A2AAuthModule.forRoot(options)` or `A2AAuthModule.forRootAsync({ imports, inject, useFactory })`.
 * - Options are validated at boot ({@link resolveOptions}); a bad option stops the app with a message naming it.
 * - Provides the Passport strategy `'a2a-jwt'`, the global {@link A2AAuthGuard}, the audit trail, the Agent Card
 *   (`/.well-known/agent-card.json`), RFC 9728 metadata and the extended card.
 * - Shared state (`store`): in memory, or Redis through ioredis; exported as {@link A2A_SHARED_STORE}. With Redis the
 *   DPoP replay cache and the introspection cache live there too (see {@link createAuthRuntime}).
 * - Extras: `globalGuard` (default true) and `isGlobal` (default true), e.g. `forRoot({ ...options, globalGuard: false })`.
 */
@Module({
  imports: [DiscoveryModule, PassportModule],
  controllers: [AgentCardController, ResourceMetadataController, ExtendedCardController],
  providers: [
    {
      provide: A2A_AUTH_RESOLVED_OPTIONS,
      useFactory: (o: A2AAuthModuleOptions) => resolveOptions(o),
      inject: [A2A_AUTH_MODULE_OPTIONS],
    },
    {
      provide: A2A_AUTH_RUNTIME,
      useFactory: (o: ResolvedOptions, store: SharedStore) => {
        const log = new RateLimitedLog(new Logger('A2AStore'), 5, 'a2a.store.cache_unavailable.suppressed');
        return createAuthRuntime(o, new Logger('A2AAuthKeys'), { store, warn: (line) => log.write('warn', () => line) });
      },
      inject: [A2A_AUTH_RESOLVED_OPTIONS, A2A_SHARED_STORE],
    },
    { provide: A2A_VERIFIER, useFactory: (r: AuthRuntime) => r.verifier, inject: [A2A_AUTH_RUNTIME] },
    { provide: KeyRegistry, useFactory: (r: AuthRuntime) => r.keys, inject: [A2A_AUTH_RUNTIME] },
    { provide: VerifiedTokenCache, useFactory: (r: AuthRuntime) => r.cache, inject: [A2A_AUTH_RUNTIME] },
    {
      provide: A2A_AUDIT_SINK,
      useFactory: (o: ResolvedOptions) => o.auditSink ?? new LoggerAuditSink(o.audit.successes, o.audit.failureLogRatePerSecond),
      inject: [A2A_AUTH_RESOLVED_OPTIONS],
    },
    { provide: 'A2A_TRUSTED_HOPS', useFactory: (o: ResolvedOptions) => o.throttle.trustedProxyHops, inject: [A2A_AUTH_RESOLVED_OPTIONS] },
    {
      provide: getOptionsToken(),
      useFactory: (o: ResolvedOptions) => ({ throttlers: [{ name: 'default', ttl: o.throttle.ttl * 1000, limit: o.throttle.limit }] }),
      inject: [A2A_AUTH_RESOLVED_OPTIONS],
    },
    ...STORE_PROVIDERS,
    ClientRateLimiter,
    A2AJwtStrategy,
    AuthAuditService,
    A2AAuthGuard,
    CardThrottlerGuard,
    SkillRegistry,
    AgentCardService,
  ],
  exports: [
    A2A_AUTH_RESOLVED_OPTIONS,
    A2AAuthGuard,
    A2A_VERIFIER,
    A2A_AUTH_RUNTIME,
    A2AJwtStrategy,
    AgentCardService,
    SkillRegistry,
    KeyRegistry,
    VerifiedTokenCache,
    AuthAuditService,
    A2A_AUDIT_SINK,
    A2A_SHARED_STORE,
    // A route-level @UseGuards(A2AAuthGuard) is instantiated in the app's module and needs it there.
    ClientRateLimiter,
  ],
})
export class A2AAuthModule extends ConfigurableModuleClass {}
