import { SetMetadata } from '@nestjs/common';
import { resolveClientRateLimit, type ClientRateLimitOptions } from '../../core/options';
import { CLIENT_RATE_LIMIT_KEY } from '../constants';

/**
 * A per-client limit for this route (handler, or every handler of a controller; the handler's wins): at most
 * `limit` requests per `ttl` seconds per verified client, counted across all instances sharing the `store`, in
 * addition to the module-wide `clientRateLimit`. Past it: 429 with `Retry-After` (RFC 6585 §4) and an audit event
 * `rate_limited`. Applies after authentication, so `@Public()` routes are not counted. On an `@AgentSkill` handler it
 * also counts the A2A messages (`SendMessage`, `SendStreamingMessage`, `POST /message:send|stream`) that name the skill,
 * with the same 429 on both bindings (`A2ASkillAuthorizer.authorizeMessage`); the handler's REST route, if any,
 * shares that budget.
 * @throws A2AAuthConfigError at class definition unless `limit` is a positive integer and `ttl` positive.
 */
export const ClientRateLimit = (options: ClientRateLimitOptions) => SetMetadata(CLIENT_RATE_LIMIT_KEY, resolveClientRateLimit('@ClientRateLimit', options));
