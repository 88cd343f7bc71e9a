import type { INestApplication } from '@nestjs/common';

/** The A2A media type (A2A v1.0, HTTP+JSON binding): JSON, accepted alongside `application/json`. */
export const A2A_MEDIA_TYPE = 'application/a2a+json';

type Done = (err: Error | null, body?: unknown) => void;
type BodyParser = (req: unknown, body: Buffer, done: Done) => void;

interface FastifyLike {
  getDefaultJsonParser: (onProto: string, onConstructor: string) => BodyParser;
  initialConfig?: { onProtoPoisoning?: string; onConstructorPoisoning?: string };
}

/**
 * Makes the app's JSON body parsing fit the A2A bindings, on express and fastify alike. Call it once, after
 * `NestFactory.create` and before `listen` (or `init`).
 * - `application/a2a+json` request bodies are parsed as JSON, so A2A clients that use the protocol's own media type
 *   reach the bindings with their body (express would otherwise drop it, fastify answer 415).
 * - On fastify, an empty body sent as `application/json` or `application/a2a+json` parses as `{}`, as express's
 *   body-parser does, instead of fastify's 400 "Body cannot be empty": the official `@a2a-js/sdk` REST client sends
 *   `POST /tasks/{id}:cancel` and `POST /tasks/{id}:subscribe` exactly that way.
 * Malformed JSON is a 400 as before; the body limits and the prototype-poisoning protection stay the platform's own.
 */
export function enableA2AMediaType(app: INestApplication): void {
  const instance = app.getHttpAdapter().getInstance() as Partial<FastifyLike> & { addContentTypeParser?: unknown };
  const withBodyParser = app as INestApplication & { useBodyParser: (type: string | string[], ...rest: unknown[]) => void };
  if (typeof instance.addContentTypeParser === 'function' && typeof instance.getDefaultJsonParser === 'function') {
    const cfg = instance.initialConfig ?? {};
    // fastify's own JSON parser for every non-empty body: same limits, same 400 errors, same poisoning protection.
    const json = instance.getDefaultJsonParser(cfg.onProtoPoisoning ?? 'error', cfg.onConstructorPoisoning ?? 'error');
    const parser: BodyParser = (req, body, done) => (body.length === 0 ? done(null, {}) : json(req, body, done));
    // Through Nest's useBodyParser, so Nest keeps its raw-body option and does not register its own JSON parser later.
    withBodyParser.useBodyParser(['application/json', A2A_MEDIA_TYPE], {}, parser);
    return;
  }
  withBodyParser.useBodyParser('json', { type: ['application/json', A2A_MEDIA_TYPE] }); // replaces Nest's json parser: keep application/json
}
