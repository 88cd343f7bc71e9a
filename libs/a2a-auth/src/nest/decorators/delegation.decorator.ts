import { SetMetadata } from '@nestjs/common';
import { resolveDelegation, type DelegationOptions } from '../../core/delegation';
import { DELEGATION_KEY } from '../constants';

/**
 * The delegation policy (RFC 8693 §4.1 `act` claim) of a handler, a controller or an `@AgentSkill`: each field given
 * overrides the module-wide `delegation` option (the method's over the controller's). A refused chain is 403
 * `insufficient_scope`, audited as `delegation_not_allowed`, `delegation_too_deep` or `untrusted_actor`. Not allowed
 * on an `@A2AEndpoint()` (its messages follow the skill's policy; the app refuses to boot).
 *
 * @example `@Delegation({ accept: true, maxChainLength: 1, trustedActors: ['travel-agent'] })`
 * @throws Error at decoration time for an invalid field (see {@link DelegationOptions}).
 */
export function Delegation(options: DelegationOptions): MethodDecorator & ClassDecorator {
  try {
    resolveDelegation(options);
  } catch (e) {
    throw new Error(`@Delegation: ${(e as Error).message}`, { cause: e });
  }
  const copy: DelegationOptions = {};
  if (options.accept !== undefined) copy.accept = options.accept;
  if (options.maxChainLength !== undefined) copy.maxChainLength = options.maxChainLength;
  if (options.trustedActors !== undefined) copy.trustedActors = Object.freeze([...options.trustedActors]) as string[];
  return SetMetadata(DELEGATION_KEY, Object.freeze(copy));
}
