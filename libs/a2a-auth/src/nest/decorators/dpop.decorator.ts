import { SetMetadata } from '@nestjs/common';
import type { DPoPMode } from '../../core/options';
import { DPOP_MODE_KEY } from '../constants';

const MODES: readonly string[] = ['off', 'allowed', 'required'];

/**
 * Sets the RFC 9449 DPoP mode of a handler or a controller, over the module-wide `dpop` option (the handler's wins
 * over the controller's): `'required'` refuses Bearer tokens (401 with a `DPoP` challenge), `'allowed'` accepts both
 * schemes, `'off'` refuses the `DPoP` scheme. The mode is part of the route policy, so the global guard,
 * `AuthGuard('a2a-jwt')` and an `@A2AEndpoint()` controller all apply it. The proof settings (algorithms, `iat`
 * window, nonces, replay cache) stay module-wide.
 *
 * @example `@DPoP('required')`
 * @throws Error at decoration time for another value.
 */
export function DPoP(mode: DPoPMode): MethodDecorator & ClassDecorator {
  if (!MODES.includes(mode)) throw new Error(`@DPoP: mode must be 'off', 'allowed' or 'required', got ${JSON.stringify(mode)}`);
  return SetMetadata(DPOP_MODE_KEY, mode);
}
