import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { A2ACaller as VerifiedCaller } from '../../core/caller';

/** The verified caller: `{ clientId, subject, issuer, scopes, claims, expiresAt, keyId }` (see `token/caller.ts`). */
export type A2ACaller = VerifiedCaller;

/**
 * Injects the verified caller ({@link A2ACaller}: `clientId`, `subject`, `issuer`, `scopes`, `claims`).
 * `undefined` on a `@Public()` route. Also available as `request.user`.
 *
 * @example `submit(@A2ACaller() caller: A2ACaller)`
 */
export const A2ACaller = createParamDecorator((_: unknown, ctx: ExecutionContext): A2ACaller | undefined => {
  return ctx.switchToHttp().getRequest<{ user?: A2ACaller }>().user;
});
