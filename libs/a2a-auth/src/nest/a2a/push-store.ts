import { Logger } from '@nestjs/common';
import type { TaskPushNotificationConfig } from '@a2a-js/sdk';
import type { PushNotificationStore, ServerCallContext, StoredPushNotificationConfig } from '@a2a-js/sdk/server';
import { sdkErrors } from '../../client/sdk';
import { PushUrlRefusedError, type PushUrlPolicy } from '../../core/push-policy';

/** Longest accepted `token`, `authentication.credentials`, in characters. */
export const MAX_PUSH_CREDENTIAL_LENGTH = 4096;
/** An HTTP authentication scheme name is an RFC 9110 §5.6.2 token. */
const SCHEME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;
/** Header-safe: visible ASCII and spaces, so no CR/LF can split the outbound request. */
const HEADER_VALUE = /^[\x20-\x7e]*$/;

/**
 * A {@link PushNotificationStore} that admits only push-notification configs the webhook policy accepts. Every
 * config the SDK stores goes through `save`, whether it came inline (`SendMessage` / `SendStreamingMessage`
 * `configuration.taskPushNotificationConfig`) or through `CreateTaskPushNotificationConfig`, on every binding, so this
 * is the one place configs are checked when they are created:
 * - the URL passes {@link PushUrlPolicy.check} (scheme, https, every resolved address);
 * - `authentication.scheme` is an HTTP token (RFC 9110 §11.1), `credentials` and `token` are header-safe and at most
 *   {@link MAX_PUSH_CREDENTIAL_LENGTH} characters;
 * - at most `maxConfigsPerTask` configs per task.
 * A refusal is the SDK's `RequestMalformedError` (A2A invalid params: JSON-RPC `-32602`, HTTP+JSON 400
 * `INVALID_ARGUMENT`), thrown before the SDK runs the executor; nothing is stored. Reads and deletes go to `inner`.
 */
export class A2APushNotificationStore implements PushNotificationStore {
  private readonly log = new Logger('A2APushNotifications');

  constructor(
    private readonly inner: PushNotificationStore,
    private readonly policy: PushUrlPolicy,
    private readonly maxConfigsPerTask: number,
  ) {}

  /** @throws RequestMalformedError (A2A invalid params) when the config is refused. */
  async save(taskId: string, context: ServerCallContext, config: TaskPushNotificationConfig): Promise<void> {
    const { RequestMalformedError } = sdkErrors();
    const refuse = (message: string): never => {
      throw new RequestMalformedError(`pushNotificationConfig refused: ${message}`);
    };
    const auth = config.authentication;
    if (auth) {
      if (!SCHEME.test(auth.scheme ?? '')) refuse('authentication.scheme must be an HTTP authentication scheme name such as Bearer');
      if (!validCredential(auth.credentials ?? ''))
        refuse(`authentication.credentials must be printable ASCII of at most ${MAX_PUSH_CREDENTIAL_LENGTH} characters`);
    }
    if (!validCredential(config.token ?? '')) refuse(`token must be printable ASCII of at most ${MAX_PUSH_CREDENTIAL_LENGTH} characters`);
    try {
      await this.policy.check(config.url);
    } catch (e) {
      if (!(e instanceof PushUrlRefusedError)) throw e;
      this.log.warn(`push notification config refused for task ${taskId}: ${e.reason} (${e.detail}), origin ${originOf(config.url)}`);
      refuse(e.message);
    }
    const existing = await this.inner.load(taskId, context);
    if (existing.length >= this.maxConfigsPerTask && !(config.id && existing.some((c) => c.id === config.id))) {
      refuse(`a task has at most ${this.maxConfigsPerTask} push notification configs`);
    }
    await this.inner.save(taskId, context, config);
  }

  /** The task's configs, from the inner store. */
  load(taskId: string, context: ServerCallContext): Promise<TaskPushNotificationConfig[]> {
    return this.inner.load(taskId, context);
  }

  /** The task's configs with the wire version each was registered over (the inner store's, or `load` tagged `1.0`). */
  async loadWithMetadata(taskId: string, context: ServerCallContext): Promise<StoredPushNotificationConfig[]> {
    if (this.inner.loadWithMetadata) return this.inner.loadWithMetadata(taskId, context);
    return (await this.inner.load(taskId, context)).map((config) => ({ config, wireVersion: '1.0' }));
  }

  /** Deletes from the inner store. */
  delete(taskId: string, context: ServerCallContext, configId?: string): Promise<void> {
    return this.inner.delete(taskId, context, configId);
  }
}

function validCredential(v: string): boolean {
  return typeof v === 'string' && v.length <= MAX_PUSH_CREDENTIAL_LENGTH && HEADER_VALUE.test(v);
}

/** The origin of a URL for logs (never its path or query, which may carry secrets). @internal */
export function originOf(raw: string): string {
  try {
    const u = new URL(raw);
    return u.origin === 'null' ? `${u.protocol} URL` : u.origin;
  } catch {
    return '(not a URL)';
  }
}
