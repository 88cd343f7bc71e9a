import { SetMetadata } from '@nestjs/common';
import { A2A_ENDPOINT_KEY } from '../constants';

/**
 * Marks a controller (or handler) that serves an A2A binding through {@link A2AHttpTransport}. The global guard still
 * verifies any credentials sent (a bad token is 401 before the transport runs), but a request without credentials
 * reaches the transport, which applies the route policy per call: a message to a `@Public()` skill runs anonymously,
 * every other call answers 401 with the same `WWW-Authenticate` challenge as the guard. The card advertises exactly
 * that (`securityRequirements: [{}]` on public skills). Without this decorator every A2A call needs a token.
 *
 * Do not combine it with `@Public()` or `@RequireScopes()`: the skills decide (the app refuses to boot otherwise).
 */
export const A2AEndpoint = (): MethodDecorator & ClassDecorator => SetMetadata(A2A_ENDPOINT_KEY, true);
