import { sdkErrors } from '../../client/sdk';
import { sendRaw } from './http-response';

/** Content type of A2A HTTP+JSON responses (A2A v1.0 §11, IANA registration §14.1). */
export const A2A_JSON_CONTENT_TYPE = 'application/a2a+json';

/** Writes a JSON response with `Cache-Control: no-store` (A2A answers are per caller) on express or fastify. */
export function sendA2AJson(res: unknown, status: number, contentType: string, body: unknown): void {
  sendRaw(res, status, { 'Content-Type': contentType, 'Cache-Control': 'no-store' }, Buffer.from(JSON.stringify(body), 'utf8'));
}

/**
 * Sends an A2A error on the HTTP+JSON binding exactly as the official SDK's own router does: its status
 * (`restStatusFor`: e.g. 400 for `UnsupportedOperationError` and `PushNotificationNotSupportedError`, 404 for
 * `TaskNotFoundError`) and its google.rpc `Status` body with an `ErrorInfo` reason (`toRestErrorBody`),
 * as `application/a2a+json`.
 * @throws Error when `@a2a-js/sdk` is not installed.
 */
export function sendA2ARestError(res: unknown, error: unknown): void {
  const { restStatusFor, toRestErrorBody } = sdkErrors();
  const status = restStatusFor(error);
  sendA2AJson(res, status, A2A_JSON_CONTENT_TYPE, toRestErrorBody(error, status));
}

/**
 * Answers an HTTP+JSON operation the agent does not offer with A2A v1.0 `UnsupportedOperationError` (§3.3.4):
 * HTTP 400, `{ error: { code: 400, status: "FAILED_PRECONDITION", message, details: [ErrorInfo UNSUPPORTED_OPERATION] } }`.
 * The SDK builds it when installed. It is an optional peer and the extended-card route is served even by an app
 * without the A2A bindings, so without it the same body is written here rather than a 500.
 */
export function sendUnsupportedOperation(res: unknown, message: string): void {
  let errors: ReturnType<typeof sdkErrors> | undefined;
  try {
    errors = sdkErrors();
  } catch {
    errors = undefined;
  }
  if (errors) return sendA2ARestError(res, new errors.UnsupportedOperationError(message));
  sendA2AJson(res, 400, A2A_JSON_CONTENT_TYPE, unsupportedOperationBody(message));
}

/**
 * The HTTP+JSON body of `UnsupportedOperationError` without the SDK (the SDK's `toRestErrorBody` shape, which a
 * test compares it with). @internal
 */
export function unsupportedOperationBody(message: string): unknown {
  return {
    error: {
      code: 400,
      status: 'FAILED_PRECONDITION',
      message,
      details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'UNSUPPORTED_OPERATION', domain: 'a2a-protocol.org' }],
    },
  };
}

/**
 * Answers a failed per-caller extended card (`card.extendedCardFor` threw or returned an invalid card) on the
 * HTTP+JSON binding as A2A `InternalError`: HTTP 500, `{ error: { code: 500, status: "INTERNAL", message, details: [] } }`
 * (the SDK's `toRestErrorBody` shape for a generic error; written here so the route needs no SDK), `application/a2a+json`.
 */
export function sendExtendedCardFailure(res: unknown, message: string): void {
  sendA2AJson(res, 500, A2A_JSON_CONTENT_TYPE, { error: { code: 500, status: 'INTERNAL', message, details: [] } });
}
