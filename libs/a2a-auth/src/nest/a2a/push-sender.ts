import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { Logger } from '@nestjs/common';
import type { StreamResponse, Task, TaskPushNotificationConfig } from '@a2a-js/sdk';
import type { PushNotificationSender, PushNotificationStore, ServerCallContext } from '@a2a-js/sdk/server';
import { sdkServer } from '../../client/sdk';
import { PushUrlPolicy, PushUrlRefusedError, type CheckedPushTarget, type PushUrlPolicyOptions } from '../../core/push-policy';
import { A2APushNotificationStore, originOf } from './push-store';
import { a2aTaskOwner } from './a2a-user';

/**
 * The push-notification (webhook) policy of the A2A bindings, the `pushNotifications` option of
 * `createA2ARequestHandler`. It applies when the card's `capabilities.pushNotifications` is on; the defaults refuse
 * every webhook that is not a public `https` URL.
 */
export interface A2APushNotificationOptions extends Omit<PushUrlPolicyOptions, 'lookupTimeoutMs'> {
  /**
   * Deadline of one delivery, in milliseconds: resolving the host, connecting, sending, and the receiver's status
   * line. Also the deadline of the resolution when a config is created. Default `10000` (A2A §13.2 recommends 10–30 s).
   */
  timeoutMs?: number;
  /** Largest notification body, in bytes; a larger one is not sent (and logged). Default `1048576` (1 MiB). */
  maxPayloadBytes?: number;
  /** Most push-notification configs per task; one more is refused as invalid params. Default `10`. */
  maxConfigsPerTask?: number;
  /** Where configs live. Default `new InMemoryPushNotificationStore(a2aTaskOwner)` (per caller, like tasks). */
  store?: PushNotificationStore;
}

/** Default {@link A2APushNotificationOptions.timeoutMs}, in milliseconds. */
export const DEFAULT_PUSH_TIMEOUT_MS = 10_000;
/** Default {@link A2APushNotificationOptions.maxPayloadBytes}, in bytes (1 MiB). */
export const DEFAULT_PUSH_MAX_PAYLOAD_BYTES = 1024 * 1024;
/** Default {@link A2APushNotificationOptions.maxConfigsPerTask}. */
export const DEFAULT_PUSH_MAX_CONFIGS_PER_TASK = 10;
/** Notifications of one task waiting behind a slow receiver; more are dropped (and logged) so memory stays bounded. */
export const MAX_PENDING_PUSHES_PER_TASK = 100;
/** Header carrying the config's `token` (the SDK's and the A2A samples' name). */
export const PUSH_TOKEN_HEADER = 'X-A2A-Notification-Token';

/** The store and sender that {@link createPushNotifications} builds for the SDK's `DefaultRequestHandler`. */
export interface A2APushNotifications {
  store: A2APushNotificationStore;
  sender: A2APushNotificationSender;
}

/**
 * Builds the policy-checking store and the sender from the options.
 * @throws Error when a number is not positive or an `allowedOrigins` entry is not a bare http(s) origin.
 */
export function createPushNotifications(o: A2APushNotificationOptions = {}): A2APushNotifications {
  const timeoutMs = positive(o.timeoutMs ?? DEFAULT_PUSH_TIMEOUT_MS, 'timeoutMs');
  const maxPayloadBytes = positive(o.maxPayloadBytes ?? DEFAULT_PUSH_MAX_PAYLOAD_BYTES, 'maxPayloadBytes');
  const maxConfigs = positive(o.maxConfigsPerTask ?? DEFAULT_PUSH_MAX_CONFIGS_PER_TASK, 'maxConfigsPerTask');
  const policy = new PushUrlPolicy({
    allowedOrigins: o.allowedOrigins,
    allowPrivateNetworks: o.allowPrivateNetworks,
    lookup: o.lookup,
    lookupTimeoutMs: timeoutMs,
  });
  const store = new A2APushNotificationStore(o.store ?? new (sdkServer().InMemoryPushNotificationStore)(a2aTaskOwner), policy, maxConfigs);
  return { store, sender: new A2APushNotificationSender(store, policy, { timeoutMs, maxPayloadBytes }) };
}

function positive(n: number, name: string): number {
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) throw new Error(`pushNotifications.${name} must be a positive number`);
  return n;
}

/**
 * Delivers push notifications (A2A v1.0 §4.3, §13.2) as the SDK's `PushNotificationSender`, with the SSRF policy
 * applied again at delivery time (DNS may have changed since the config was stored):
 * - the URL is checked and its host resolved once; the connection goes to that checked address (the `Host` header and
 *   the TLS server name stay the URL's), with no connection reuse, so no second resolution can be steered elsewhere;
 * - `POST` with the v1.0 `StreamResponse` JSON (`application/a2a+json`), `Authorization: <scheme> <credentials>` from
 *   the config's `authentication` and {@link PUSH_TOKEN_HEADER} from its `token`: only what the config names, never
 *   the caller's own credentials;
 * - a 2xx answer is a delivery; a redirect (3xx, never followed), any other status, a refused URL, an error or the
 *   deadline (`timeoutMs`) is a failed delivery, logged with the task id and the URL's origin only;
 * - notifications of one task are sent in order; a failure never reaches the task or the caller (`send` never
 *   rejects). No retries.
 */
export class A2APushNotificationSender implements PushNotificationSender {
  private readonly log = new Logger('A2APushNotifications');
  private readonly chains = new Map<string, { tail: Promise<void>; pending: number }>();

  constructor(
    private readonly store: PushNotificationStore,
    private readonly policy: PushUrlPolicy,
    private readonly o: { timeoutMs: number; maxPayloadBytes: number },
  ) {}

  /** Sends one event to every config of its task. Resolves when this event's deliveries have ended; never rejects. */
  async send(event: StreamResponse, context: ServerCallContext, task?: Task): Promise<void> {
    try {
      const p = event.payload;
      const taskId = !p ? '' : p.$case === 'task' ? p.value.id : p.value.taskId;
      if (!taskId) return;
      const configs = await this.store.load(taskId, context);
      if (configs.length === 0) return;
      const { body, contentType } = new (sdkServer().V1PushNotificationSerializer)().serialize(event, task);
      const bytes = Buffer.from(body, 'utf8');
      if (bytes.length > this.o.maxPayloadBytes) {
        this.log.warn(`push notification not sent for task ${taskId}: ${bytes.length} bytes exceed maxPayloadBytes ${this.o.maxPayloadBytes}`);
        return;
      }
      await this.enqueue(taskId, () => Promise.all(configs.map((c) => this.deliver(taskId, c, bytes, contentType))).then(() => undefined));
    } catch (e) {
      this.log.warn(`push notification not sent: ${(e as Error)?.message ?? 'error'}`);
    }
  }

  private enqueue(taskId: string, job: () => Promise<void>): Promise<void> {
    const chain = this.chains.get(taskId) ?? { tail: Promise.resolve(), pending: 0 };
    if (chain.pending >= MAX_PENDING_PUSHES_PER_TASK) {
      this.log.warn(`push notification dropped for task ${taskId}: ${MAX_PENDING_PUSHES_PER_TASK} notifications already waiting`);
      return Promise.resolve();
    }
    chain.pending++;
    const run = chain.tail.then(job).catch(() => undefined);
    chain.tail = run.finally(() => {
      if (--chain.pending === 0 && this.chains.get(taskId) === chain) this.chains.delete(taskId);
    });
    this.chains.set(taskId, chain);
    return chain.tail;
  }

  private async deliver(taskId: string, config: TaskPushNotificationConfig, body: Buffer, contentType: string): Promise<void> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), this.o.timeoutMs);
    try {
      const target = await abortable(this.policy.check(config.url), ac.signal);
      const status = await post(target, headersFor(config, target, body, contentType), body, ac.signal);
      if (status >= 200 && status < 300) return;
      this.fail(taskId, config, status >= 300 && status < 400 ? `redirect (HTTP ${status}) refused` : `HTTP ${status}`);
    } catch (e) {
      if (ac.signal.aborted) this.fail(taskId, config, `no answer within ${this.o.timeoutMs} ms`);
      else if (e instanceof PushUrlRefusedError) this.fail(taskId, config, `URL refused: ${e.reason} (${e.detail})`);
      else this.fail(taskId, config, (e as NodeJS.ErrnoException)?.code ?? 'request failed');
    } finally {
      clearTimeout(timer);
    }
  }

  private fail(taskId: string, config: TaskPushNotificationConfig, why: string): void {
    this.log.warn(`push notification not delivered for task ${taskId} to ${originOf(config.url)}: ${why}`);
  }
}

function headersFor(config: TaskPushNotificationConfig, target: CheckedPushTarget, body: Buffer, contentType: string): OutgoingHttpHeaders {
  const h: OutgoingHttpHeaders = { Host: target.url.host, 'Content-Type': contentType, 'Content-Length': body.length };
  const auth = config.authentication;
  if (auth?.scheme) h.Authorization = auth.credentials ? `${auth.scheme} ${auth.credentials}` : auth.scheme;
  if (config.token) h[PUSH_TOKEN_HEADER] = config.token;
  return h;
}

/** POSTs `body` to the checked address; resolves with the status code without reading the answer's body. */
function post(target: CheckedPushTarget, headers: OutgoingHttpHeaders, body: Buffer, signal: AbortSignal): Promise<number> {
  const { url, hostname, address, family } = target;
  // Node calls `lookup` for a host name (with `all: true` when it may try several families); an IP literal is used as is.
  const lookup: LookupFunction = (_host, opts, cb) => {
    if ((opts as { all?: boolean }).all) (cb as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [{ address, family }]);
    else cb(null, address, family);
  };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<number>((resolve, reject) => {
    const req = send({
      method: 'POST',
      hostname,
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
      headers,
      lookup,
      agent: false,
      signal,
      ...(url.protocol === 'https:' && isIP(hostname) === 0 ? { servername: hostname } : {}),
    });
    req.once('error', reject);
    req.once('response', (res: IncomingMessage) => {
      res.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.end(body);
  });
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('aborted'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
