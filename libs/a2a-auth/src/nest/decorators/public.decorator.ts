import { SetMetadata } from '@nestjs/common';
import { IS_PUBLIC_KEY } from '../constants';

/**
 * Marks a handler or controller as public: the global guard lets it through without a token, and a `@Public()` skill
 * is advertised with the empty security requirement `securityRequirements: [{}]` (no authentication).
 * The more specific level wins: a method with `@RequireScopes` stays protected in a `@Public()` controller. `@Public()`
 * and `@RequireScopes()` on the same class or method refuse to boot.
 */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC_KEY, true);
