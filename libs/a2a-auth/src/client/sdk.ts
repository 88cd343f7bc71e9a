/**
 * Lazy access to the optional peer dependency `@a2a-js/sdk`. Only type imports are static, so the library loads
 * without the SDK; the SDK is required on first use of an A2A feature.
 * @internal
 */
import type * as SdkRoot from '@a2a-js/sdk';
import type * as SdkServer from '@a2a-js/sdk/server';
import type * as SdkClient from '@a2a-js/sdk/client';
import type * as SdkErrors from '@a2a-js/sdk/errors';

const cache = new Map<string, unknown>();

function load<T>(id: string): T {
  let m = cache.get(id);
  if (m === undefined) {
    try {
      m = require(id) as unknown;
    } catch (e) {
      if ((e as { code?: string })?.code === 'MODULE_NOT_FOUND') {
        throw new Error(`nestjs-a2a-auth: this feature needs the optional peer dependency @a2a-js/sdk (npm i @a2a-js/sdk); ${id} was not found`, { cause: e });
      }
      throw e;
    }
    cache.set(id, m);
  }
  return m as T;
}

/** `@a2a-js/sdk` (root: AgentCard, SendMessageRequest, …). @internal */
export const sdkRoot = (): typeof SdkRoot => load('@a2a-js/sdk');
/** `@a2a-js/sdk/server`. @internal */
export const sdkServer = (): typeof SdkServer => load('@a2a-js/sdk/server');
/** `@a2a-js/sdk/client`. @internal */
export const sdkClient = (): typeof SdkClient => load('@a2a-js/sdk/client');
/** `@a2a-js/sdk/errors`. @internal */
export const sdkErrors = (): typeof SdkErrors => load('@a2a-js/sdk/errors');
