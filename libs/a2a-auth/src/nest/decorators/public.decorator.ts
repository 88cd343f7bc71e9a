import { SetMetadata } from '@nestjs/common';
import { IS_PUBLIC_KEY } from '../constants';

/**
 * Marks a handler or controller as public: the global guard lets it through without a token.
 * A `@Public()` skill is advertised with an empty security requirement (A2A v1.0 `securityRequirements: []`).
 */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC_KEY, true);
