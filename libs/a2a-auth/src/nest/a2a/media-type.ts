import type { INestApplication } from '@nestjs/common';

/** The A2A media type (A2A v1.0, HTTP+JSON binding): JSON, accepted alongside `application/json`. */
export const A2A_MEDIA_TYPE = 'application/a2a+json';

/**
 * Makes the app parse `application/a2a+json` request bodies as JSON, on express and fastify, so A2A clients that use
 * the protocol's own media type reach the bindings with their body (express would otherwise drop it, fastify answer 415).
 * Call it after `NestFactory.create` and before `listen`. Malformed JSON is a 400, as for `application/json`.
 */
export function enableA2AMediaType(app: INestApplication): void {
  const instance = app.getHttpAdapter().getInstance() as {
    addContentTypeParser?: (type: string, opts: { parseAs: 'string' }, fn: unknown) => void;
    getDefaultJsonParser?: (onProto: 'error', onConstructor: 'error') => unknown;
  };
  if (typeof instance.addContentTypeParser === 'function' && typeof instance.getDefaultJsonParser === 'function') {
    // fastify's own JSON parser: same limits, same 400 errors, same prototype-poisoning protection.
    instance.addContentTypeParser(A2A_MEDIA_TYPE, { parseAs: 'string' }, instance.getDefaultJsonParser('error', 'error'));
    return;
  }
  (app as INestApplication & { useBodyParser: (type: string, opts: Record<string, unknown>) => void }).useBodyParser('json', {
    type: ['application/json', A2A_MEDIA_TYPE],
  }); // replaces Nest's json parser: keep application/json
}
