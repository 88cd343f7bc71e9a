import { Logger } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import type { AgentCard, SendMessageRequest } from '@a2a-js/sdk';
import type { A2ARequestHandler, AgentExecutor, ServerCallContext, TaskStore } from '@a2a-js/sdk/server';
import type { AgentCardService } from '../card/card.service';
import { sendRaw } from '../http/http-response';
import { A2A_JSON_CONTENT_TYPE, sendA2AJson } from '../http/a2a-rest-error';
import { requestedA2AVersion, type HttpRequestLike } from '../http/request-info';
import { A2A_CALLER_STATE_KEY, A2A_SKILL_STATE_KEY, A2AUser, a2aTaskOwner } from './a2a-user';
import { sdkErrors, sdkRoot, sdkServer } from '../../client/sdk';
import { A2A_MESSAGE_METHODS, A2ASkillAuthorizer, A2ASkillResolutionError, type AuthorizedCall, type AuthorizedSkill } from './skill-authorizer';
import { authorizingExecutor, bindRequest, bindStepUpGrant, heldTaskRefusal, inTaskBusManager } from './in-task-auth';
import type { A2ACaller } from '../../core/caller';
import { createPushNotifications, type A2APushNotificationOptions } from './push-sender';

/** Content type of HTTP+JSON responses (A2A v1.0 §11). */
const A2A_JSON = A2A_JSON_CONTENT_TYPE;
/** Request headers never copied into `ServerCallContext.state` (executors may log state). */
const SECRET_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);

/** Options of {@link createA2ARequestHandler}. */
export interface A2ARequestHandlerOptions {
  /** Task store. Default `new InMemoryTaskStore(a2aTaskOwner)`: tasks are scoped to the caller's `iss` + `sub`. */
  taskStore?: TaskStore;
  /**
   * The webhook policy, used when the card's `capabilities.pushNotifications` is on (the SDK's own sender would POST
   * task data to any URL a caller names): configs are checked when created and again at each delivery, and
   * deliveries are bounded. Default: public `https` URLs only, 10000 ms, 1 MiB, 10 configs per task.
   */
  pushNotifications?: A2APushNotificationOptions;
}

/**
 * Builds the SDK's `DefaultRequestHandler` from the library's cards, so the A2A bindings serve exactly the card the
 * library built (one source of truth). The cards are converted to the SDK's internal form with `AgentCard.fromJSON`.
 * `GetExtendedAgentCard` returns the caller's own extended card ({@link AgentCardService.extendedCardFor}: the same
 * document as `GET /extendedAgentCard`) to authenticated callers (the base card otherwise); it fails with the SDK's
 * "unsupported operation" when `card.extendedCard` is off, and with JSON-RPC `-32603` (fixed message) when
 * `card.extendedCardFor` fails.
 * The executor is wrapped for in-task authorization (fail closed until a skill is authorized; follow-ups resume a task
 * waiting for scopes, see `A2AInTaskAuthorization`), and the SDK's event-bus manager gives such a follow-up a bus of
 * its own. With `card.capabilities.pushNotifications` on, the handler gets the library's push-notification store and sender
 * ({@link createPushNotifications}: the webhook policy of `o.pushNotifications`) instead of the SDK's defaults.
 * Call it after the app has initialised (cards are built in `onModuleInit`); {@link A2AHttpTransport} does so lazily.
 * @throws Error when `@a2a-js/sdk` is not installed, no card is configured, or `o.pushNotifications` is invalid.
 */
export function createA2ARequestHandler(cards: AgentCardService, executor: AgentExecutor, o: A2ARequestHandlerOptions = {}): A2ARequestHandler {
  const { AgentCard } = sdkRoot();
  const { DefaultRequestHandler, InMemoryTaskStore } = sdkServer();
  const base: AgentCard = AgentCard.fromJSON(cards.card());
  const push = base.capabilities?.pushNotifications ? createPushNotifications(o.pushNotifications) : undefined;
  return new DefaultRequestHandler(
    base,
    o.taskStore ?? new InMemoryTaskStore(a2aTaskOwner),
    withGenericErrors(authorizingExecutor(executor)),
    inTaskBusManager(),
    push?.store,
    push?.sender,
    async (ctx: ServerCallContext) => {
      const caller = ctx.state.get(A2A_CALLER_STATE_KEY) as A2ACaller | undefined;
      if (!ctx.user?.isAuthenticated || !caller) return base;
      return AgentCard.fromJSON(await cards.extendedCardFor(caller)); // an ExtendedCardError becomes -32603 with its fixed message
    },
  );
}

/** Text of the failed task (and of any error answer) when an executor throws something that is not an A2A error. */
export const EXECUTOR_FAILURE_MESSAGE = 'the agent could not complete the request';

/**
 * The executor as the SDK sees it: an A2A error (the SDK's own classes, e.g. `TaskNotFoundError`) passes through as it
 * is; any other exception is logged through Nest (`A2AExecutor`, with its stack) and reaches the SDK as a generic error,
 * because the SDK copies an exception's message into the failed task and the error answer, where it would show
 * internals (hosts, paths, SQL states) to the caller.
 */
function withGenericErrors(executor: AgentExecutor): AgentExecutor {
  const { A2AError } = sdkErrors();
  const logger = new Logger('A2AExecutor');
  const generic = (e: unknown): never => {
    if (e instanceof A2AError) throw e;
    logger.error(`executor failed: ${(e as Error)?.message ?? String(e)}`, (e as Error)?.stack);
    throw new Error(EXECUTOR_FAILURE_MESSAGE);
  };
  return {
    execute: (ctx, bus) =>
      Promise.resolve()
        .then(() => executor.execute(ctx, bus))
        .catch(generic),
    cancelTask: (taskId, bus) =>
      Promise.resolve()
        .then(() => executor.cancelTask(taskId, bus))
        .catch(generic),
  };
}

type Query = Record<string, unknown>;

/**
 * Serves the official SDK's A2A v1.0 bindings from inside Nest controllers (express or fastify), so the global
 * {@link A2AAuthGuard} runs first on every binding. Controllers pass `@Req()`, `@Res()` and the parsed body.
 *
 * For every call:
 * 1. The verified caller (`request.user`, set by the guard) becomes the SDK `User` ({@link A2AUser}) of the
 *    `ServerCallContext`; the caller and the authorized skill are also put in `context.state`
 *    ({@link A2A_CALLER_STATE_KEY}, {@link A2A_SKILL_STATE_KEY}). No caller: HTTP 401 (fail closed).
 * 2. Messages (`SendMessage`, `SendStreamingMessage`, `POST /message:send|stream`) go through
 *    {@link A2ASkillAuthorizer}: HTTP 403 `insufficient_scope` before the executor runs; an unknown skill id is an A2A
 *    invalid-params error (JSON-RPC `-32602` with HTTP 200; HTTP+JSON `400 INVALID_ARGUMENT`); past the skill
 *    handler's own `@ClientRateLimit()`, HTTP 429 with `Retry-After` on both bindings; no skill id on an agent
 *    with several skills: the executor routes the message and must call `A2AInTaskAuthorization.authorizeSkill` (the
 *    executor wrapper refuses results otherwise). A message on a task waiting in `TASK_STATE_AUTH_REQUIRED` for more
 *    scopes must come from its owner (else the A2A task-not-found error) with a token that grants them (else 403).
 * 3. `A2A-Version` is checked with the SDK's `validateVersion` against the card's `supportedInterfaces`: JSON-RPC
 *    `-32009` / HTTP+JSON `400 FAILED_PRECONDITION`. It is the header, else the `A2A-Version` query parameter
 *    (A2A v1.0 §3.6.1: "as a request parameter instead of a header"); the header wins when both are sent, and neither
 *    means `0.3` (§3.6.2).
 * 4. The SDK handles the call. JSON-RPC answers are envelopes with HTTP 200 (`application/json`); HTTP+JSON answers
 *    use the SDK's error bodies and statuses (`application/a2a+json`). Streams are `text/event-stream`.
 */
export class A2AHttpTransport {
  private handler?: A2ARequestHandler;
  private factory?: () => A2ARequestHandler;

  /**
   * @param handler the SDK request handler, or a factory called on first use (e.g. `() => createA2ARequestHandler(cards, executor)`).
   */
  constructor(
    handler: A2ARequestHandler | (() => A2ARequestHandler),
    private readonly authorizer: A2ASkillAuthorizer,
  ) {
    if (typeof handler === 'function') this.factory = handler;
    else this.handler = handler;
  }

  /** The SDK request handler (built on first use). */
  get requestHandler(): A2ARequestHandler {
    if (!this.handler) this.handler = this.factory!();
    return this.handler;
  }

  /** JSON-RPC 2.0 binding: `POST <jsonrpc url>` with the envelope as body. */
  async jsonRpc(req: HttpRequestLike, res: unknown, body: unknown): Promise<void> {
    const { JsonRpcTransportHandler, validateVersion } = sdkServer();
    const { toJsonRpcError, RequestMalformedError } = sdkErrors();
    this.authorizer.precheck(req, res);
    const id = rpcId(body);
    const fail = (e: unknown) => sendJson(res, 200, 'application/json', { jsonrpc: '2.0', id, error: toJsonRpcError(e) });
    // Only an already-parsed JSON object goes on: the SDK would parse a string body itself (text/plain on fastify, or
    // double-encoded JSON), after the skill check had nothing to read: a scope bypass. Batches are not part of A2A.
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return fail(new RequestMalformedError('the JSON-RPC request must be a JSON object sent as application/json'));
    }
    if (!withinDepth(body, MAX_JSON_DEPTH)) return fail(new RequestMalformedError(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`));
    let call: AuthorizedCall;
    try {
      call = await this.authorizer.authorizeJsonRpc(req, res, body);
    } catch (e) {
      if (e instanceof A2ASkillResolutionError) return fail(new RequestMalformedError(e.message));
      throw e; // 401/403/429 HttpException: the guard's headers are already on `res`
    }
    const skill = call.skill;
    const ctx = this.context(req, call.caller, skill);
    const isMessage = A2A_MESSAGE_METHODS.includes(String((body as { method?: unknown }).method));
    try {
      validateVersion(ctx.requestedVersion, await this.requestHandler.getAgentCard(), 'JSONRPC');
      if (isMessage) parseSendMessage((body as { params?: unknown }).params); // malformed params: -32602, not -32603
    } catch (e) {
      return fail(e);
    }
    const refusal = isMessage ? await this.followUp(req, res, (body as { params?: unknown }).params, ctx, call.caller) : undefined;
    if (refusal) return fail(refusal);
    const out = await new JsonRpcTransportHandler(this.requestHandler).handle(body as Record<string, unknown>, ctx);
    if (isAsyncIterable(out)) {
      return streamSse(
        res,
        out,
        (ev) => ev,
        (e) => ({ jsonrpc: '2.0', id, error: toJsonRpcError(e) }),
        (e) => [200, 'application/json', { jsonrpc: '2.0', id, error: toJsonRpcError(e) }],
      );
    }
    sendJson(res, 200, 'application/json', out);
  }

  /** HTTP+JSON `POST /message:send`: body is a `SendMessageRequest`; answers `{ message }` or `{ task }`. */
  async sendMessage(req: HttpRequestLike, res: unknown, body: unknown): Promise<void> {
    const { SendMessageResponse } = sdkRoot();
    await this.rest(req, res, body, true, async (ctx) => {
      const params = parseSendMessage(body);
      const r = await this.requestHandler.sendMessage(params, ctx);
      const payload = 'messageId' in r ? { $case: 'message' as const, value: r } : { $case: 'task' as const, value: r };
      return SendMessageResponse.toJSON({ payload });
    });
  }

  /** HTTP+JSON `POST /message:stream`: server-sent events, each a `StreamResponse`. */
  async streamMessage(req: HttpRequestLike, res: unknown, body: unknown): Promise<void> {
    const { StreamResponse } = sdkRoot();
    await this.restStream(
      req,
      res,
      body,
      true,
      (ctx) => {
        const params = parseSendMessage(body);
        return this.requestHandler.sendMessageStream(params, ctx);
      },
      (ev) => StreamResponse.toJSON(ev as never),
    );
  }

  /** HTTP+JSON `GET /tasks/{id}?historyLength=`. */
  async getTask(req: HttpRequestLike, res: unknown, id: string, query: Query = {}): Promise<void> {
    const { Task } = sdkRoot();
    await this.rest(req, res, undefined, false, async (ctx) => {
      const historyLength = query.historyLength === undefined ? undefined : nonNegativeInt(query.historyLength, 'historyLength');
      return Task.toJSON(await this.requestHandler.getTask({ id, tenant: '', ...(historyLength !== undefined ? { historyLength } : {}) }, ctx));
    });
  }

  /** HTTP+JSON `GET /tasks?contextId=&pageSize=&pageToken=&historyLength=`: the caller's own tasks. */
  async listTasks(req: HttpRequestLike, res: unknown, query: Query = {}): Promise<void> {
    const { ListTasksResponse } = sdkRoot();
    await this.rest(req, res, undefined, false, async (ctx) => {
      const pageSize = query.pageSize === undefined || query.pageSize === '' ? undefined : nonNegativeInt(query.pageSize, 'pageSize');
      if (pageSize !== undefined && (pageSize < 1 || pageSize > 100)) throw new (sdkErrors().RequestMalformedError)('pageSize must be between 1 and 100');
      const historyLength = query.historyLength === undefined || query.historyLength === '' ? undefined : nonNegativeInt(query.historyLength, 'historyLength');
      const r = await this.requestHandler.listTasks(
        {
          tenant: '',
          contextId: str(query.contextId),
          status: 0,
          pageSize,
          pageToken: str(query.pageToken),
          historyLength,
          statusTimestampAfter: undefined,
          includeArtifacts: query.includeArtifacts === 'true',
        } as never,
        ctx,
      );
      return ListTasksResponse.toJSON(r);
    });
  }

  /**
   * HTTP+JSON `POST /tasks/{id}/pushNotificationConfigs` (A2A v1.0 §11.3.3, Create Push Notification Config): the body
   * is a `TaskPushNotificationConfig`; the task is the one the path names, whatever the body says. Answers 201 with the
   * stored config (as the SDK's own router). The SDK request handler decides the rest: `PushNotificationNotSupportedError`
   * (400, reason `PUSH_NOTIFICATION_NOT_SUPPORTED`) when `capabilities.pushNotifications` is off, `TaskNotFoundError`
   * (404) for a task that is not the caller's. A body that is no JSON object is 400 `INVALID_ARGUMENT`.
   */
  async createPushNotificationConfig(req: HttpRequestLike, res: unknown, taskId: string, body: unknown): Promise<void> {
    const { TaskPushNotificationConfig } = sdkRoot();
    await this.rest(
      req,
      res,
      body,
      false,
      async (ctx) => {
        const config = parseBody(body, 'TaskPushNotificationConfig', (b) => TaskPushNotificationConfig.fromJSON({ ...b, taskId }));
        return TaskPushNotificationConfig.toJSON(await this.requestHandler.createTaskPushNotificationConfig(config, ctx));
      },
      201,
    );
  }

  /** HTTP+JSON `GET /tasks/{id}/pushNotificationConfigs?pageSize=&pageToken=` (§11.3.3): `{ configs }`. Errors as {@link createPushNotificationConfig}. */
  async listPushNotificationConfigs(req: HttpRequestLike, res: unknown, taskId: string, query: Query = {}): Promise<void> {
    const { ListTaskPushNotificationConfigsResponse } = sdkRoot();
    await this.rest(req, res, undefined, false, async (ctx) => {
      const pageSize = query.pageSize === undefined || query.pageSize === '' ? 0 : nonNegativeInt(query.pageSize, 'pageSize');
      const r = await this.requestHandler.listTaskPushNotificationConfigs({ tenant: '', taskId, pageSize, pageToken: str(query.pageToken) }, ctx);
      return ListTaskPushNotificationConfigsResponse.toJSON(r);
    });
  }

  /** HTTP+JSON `GET /tasks/{id}/pushNotificationConfigs/{configId}` (§11.3.3): the config; 404 when there is none. */
  async getPushNotificationConfig(req: HttpRequestLike, res: unknown, taskId: string, configId: string): Promise<void> {
    const { TaskPushNotificationConfig } = sdkRoot();
    await this.rest(req, res, undefined, false, async (ctx) =>
      TaskPushNotificationConfig.toJSON(await this.requestHandler.getTaskPushNotificationConfig({ tenant: '', taskId, id: configId }, ctx)),
    );
  }

  /** HTTP+JSON `DELETE /tasks/{id}/pushNotificationConfigs/{configId}` (§11.3.3): 204, also for a config already gone (idempotent, §3.1.10). */
  async deletePushNotificationConfig(req: HttpRequestLike, res: unknown, taskId: string, configId: string): Promise<void> {
    await this.rest(
      req,
      res,
      undefined,
      false,
      async (ctx) => this.requestHandler.deleteTaskPushNotificationConfig({ tenant: '', taskId, id: configId }, ctx),
      204,
    );
  }

  /**
   * HTTP+JSON task actions addressed as `/tasks/{id}:cancel` (POST) and `/tasks/{id}:subscribe` (GET or POST),
   * with `idAndAction` the whole last path segment (route it as `tasks/:id`: a literal `:` in a route differs
   * between express and fastify). A segment without an action is `GET /tasks/{id}`.
   */
  async taskAction(req: HttpRequestLike, res: unknown, idAndAction: string, method: 'GET' | 'POST', query: Query = {}): Promise<void> {
    const i = idAndAction.lastIndexOf(':');
    const [id, action] = i < 0 ? [idAndAction, ''] : [idAndAction.slice(0, i), idAndAction.slice(i + 1)];
    if (action === '' && method === 'GET') return this.getTask(req, res, id, query);
    if (action === 'cancel' && method === 'POST') {
      const { Task } = sdkRoot();
      return this.rest(req, res, undefined, false, async (ctx) =>
        Task.toJSON(await this.requestHandler.cancelTask({ id, tenant: '', metadata: {} } as never, ctx)),
      );
    }
    if (action === 'subscribe') {
      const { StreamResponse } = sdkRoot();
      return this.restStream(
        req,
        res,
        undefined,
        false,
        (ctx) => this.requestHandler.resubscribe({ id, tenant: '' }, ctx),
        (ev) => StreamResponse.toJSON(ev as never),
      );
    }
    this.authorizer.authorizeCall(req, res);
    const { UnsupportedOperationError, toRestErrorBody } = sdkErrors();
    sendJson(res, 404, A2A_JSON, toRestErrorBody(new UnsupportedOperationError(`no such task operation`), 404));
  }

  /**
   * The SDK call context of an authorized call: the caller as the SDK `User` (anonymous for a public skill reached
   * without a token), the caller and the skill in `state`, and the request headers without credentials.
   */
  context(req: HttpRequestLike, caller: A2ACaller | undefined, skill?: AuthorizedSkill): ServerCallContext {
    const { ServerCallContext, STATE_HEADERS_KEY } = sdkServer();
    const { Extensions } = sdkRoot();
    const headers: Record<string, string | string[] | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) if (!SECRET_HEADERS.has(k.toLowerCase())) headers[k] = v;
    const state = new Map<string, unknown>([
      [STATE_HEADERS_KEY, headers],
      [A2A_CALLER_STATE_KEY, caller],
    ]);
    if (skill) state.set(A2A_SKILL_STATE_KEY, skill);
    const ctx = new ServerCallContext({
      user: new A2AUser(caller),
      requestedVersion: requestedA2AVersion(req),
      requestedExtensions: Extensions.parseServiceParameter(header(req, 'a2a-extensions')),
      state,
    });
    bindRequest(ctx, req);
    return ctx;
  }

  /** @param status the success status: 200, 201 (created) or 204 (no content: `run`'s result is not sent). */
  private async rest(
    req: HttpRequestLike,
    res: unknown,
    body: unknown,
    isMessage: boolean,
    run: (ctx: ServerCallContext) => Promise<unknown>,
    status: 200 | 201 | 204 = 200,
  ): Promise<void> {
    const ctx = await this.restContext(req, res, body, isMessage);
    if (!ctx) return;
    const { restStatusFor, toRestErrorBody } = sdkErrors();
    let out: unknown;
    try {
      out = await run(ctx);
    } catch (e) {
      const s = restStatusFor(e);
      return sendJson(res, s, A2A_JSON, toRestErrorBody(e, s));
    }
    if (status === 204) return sendRaw(res, 204, { 'Cache-Control': 'no-store' });
    sendJson(res, status, A2A_JSON, out);
  }

  private async restStream(
    req: HttpRequestLike,
    res: unknown,
    body: unknown,
    isMessage: boolean,
    run: (ctx: ServerCallContext) => AsyncIterable<unknown>,
    toJson: (ev: unknown) => unknown,
  ): Promise<void> {
    const ctx = await this.restContext(req, res, body, isMessage);
    if (!ctx) return;
    const { restStatusFor, toRestErrorBody } = sdkErrors();
    let it: AsyncIterable<unknown>;
    try {
      it = run(ctx);
    } catch (e) {
      const s = restStatusFor(e);
      return sendJson(res, s, A2A_JSON, toRestErrorBody(e, s));
    }
    await streamSse(
      res,
      it,
      toJson,
      (e) => toRestErrorBody(e, restStatusFor(e)),
      (e) => {
        const s = restStatusFor(e);
        return [s, A2A_JSON, toRestErrorBody(e, s)];
      },
    );
  }

  /** Caller, skill check (messages), version check; `undefined` when an error response was already sent. */
  private async restContext(req: HttpRequestLike, res: unknown, body: unknown, isMessage: boolean): Promise<ServerCallContext | undefined> {
    const { validateVersion } = sdkServer();
    const { RequestMalformedError, restStatusFor, toRestErrorBody } = sdkErrors();
    this.authorizer.precheck(req, res);
    if (!withinDepth(body, MAX_JSON_DEPTH)) {
      sendJson(res, 400, A2A_JSON, toRestErrorBody(new RequestMalformedError(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`), 400));
      return undefined;
    }
    let skill: AuthorizedSkill | undefined;
    let caller: A2ACaller | undefined;
    if (isMessage) {
      try {
        ({ skill, caller } = await this.authorizer.authorizeMessage(req, res, body));
      } catch (e) {
        if (!(e instanceof A2ASkillResolutionError)) throw e;
        sendJson(res, 400, A2A_JSON, toRestErrorBody(new RequestMalformedError(e.message), 400));
        return undefined;
      }
    } else {
      caller = this.authorizer.authorizeCall(req, res);
    }
    const ctx = this.context(req, caller, skill);
    try {
      validateVersion(ctx.requestedVersion, await this.requestHandler.getAgentCard(), 'HTTP+JSON');
    } catch (e) {
      const s = restStatusFor(e);
      sendJson(res, s, A2A_JSON, toRestErrorBody(e, s));
      return undefined;
    }
    const refusal = isMessage ? await this.followUp(req, res, body, ctx, caller) : undefined;
    if (refusal) {
      const s = restStatusFor(refusal);
      sendJson(res, s, A2A_JSON, toRestErrorBody(refusal, s));
      return undefined;
    }
    return ctx;
  }

  /**
   * A message on a task that waits for more scopes answers it ({@link A2ASkillAuthorizer.authorizeFollowUp}): when the
   * owner's token grants them, the call context is marked so the waiting executor resumes (and no second one runs).
   * A message by the owner on a task whose execution still waits for something else (a human approval, or a scope
   * request that just lapsed) is refused: the SDK would run a second execution of the task beside the waiting one.
   * @returns the A2A error to answer with: task-not-found for a follow-up from another owner (nothing changes on it),
   *   unsupported-operation for a message on a waiting task; `undefined` to go on.
   * @throws HttpException 401/403 (headers on `res`) when the token lacks the pending scopes.
   */
  private async followUp(
    req: HttpRequestLike,
    res: unknown,
    params: unknown,
    ctx: ServerCallContext,
    caller: A2ACaller | undefined,
  ): Promise<Error | undefined> {
    const p = await this.authorizer.authorizeFollowUp(req, res, params, caller);
    if (p === 'not_owner') return new (sdkErrors().TaskNotFoundError)('Task not found');
    if (p && caller) {
      bindStepUpGrant(ctx, { taskId: p.taskId, operation: p.operation, caller, store: this.authorizer.pending });
      return undefined;
    }
    return heldTaskRefusal(messageTaskIdOf(params), ctx);
  }
}

/** Deepest JSON nesting accepted in an A2A request body; the SDK's converters recurse and would overflow the stack. */
export const MAX_JSON_DEPTH = 64;

/** Iterative (stack-safe) check that a parsed JSON value nests at most `max` levels. */
function withinDepth(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d >= max) return false;
    for (const child of Array.isArray(v) ? v : Object.values(v as object)) {
      if (child !== null && typeof child === 'object') stack.push([child, d + 1]);
    }
  }
  return true;
}

/** `message.taskId` of a `SendMessageRequest` JSON, or `''`. */
function messageTaskIdOf(params: unknown): string {
  const m = (params as { message?: { taskId?: unknown } } | null)?.message;
  return typeof m?.taskId === 'string' ? m.taskId : '';
}

function header(req: HttpRequestLike, name: string): string | undefined {
  const v = req.headers[name];
  const s = Array.isArray(v) ? v.join(',') : v;
  return s === undefined || s === '' ? undefined : s;
}

function rpcId(body: unknown): string | number | null {
  const id = (body as { id?: unknown } | null)?.id;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}

/**
 * `SendMessageRequest.fromJSON` with its input checked: the SDK's parser throws a `TypeError` on some malformed
 * shapes (e.g. `parts: [null]`), which would become a 500; here every malformed body is "invalid params".
 */
function parseSendMessage(body: unknown): SendMessageRequest {
  const { RequestMalformedError } = sdkErrors();
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new RequestMalformedError('request body must be a JSON object');
  let params: SendMessageRequest;
  try {
    params = sdkRoot().SendMessageRequest.fromJSON(body);
  } catch {
    throw new RequestMalformedError('malformed SendMessageRequest');
  }
  if (!params.message) throw new RequestMalformedError('message is required');
  if (!params.message.messageId) throw new RequestMalformedError('message.messageId is required');
  return params;
}

/** A request body that must be a JSON object, converted by an SDK `fromJSON` whose `TypeError`s become invalid-argument errors. */
function parseBody<T>(body: unknown, what: string, fromJSON: (b: Record<string, unknown>) => T): T {
  const { RequestMalformedError } = sdkErrors();
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new RequestMalformedError('request body must be a JSON object');
  try {
    return fromJSON(body as Record<string, unknown>);
  } catch {
    throw new RequestMalformedError(`malformed ${what}`);
  }
}

function nonNegativeInt(v: unknown, name: string): number {
  const s = String(v).trim();
  if (!/^\d{1,9}$/.test(s)) throw new (sdkErrors().RequestMalformedError)(`${name} must be a non-negative integer`);
  return Number(s);
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function isAsyncIterable(v: unknown): v is AsyncIterable<unknown> {
  return typeof (v as AsyncIterable<unknown> | null)?.[Symbol.asyncIterator] === 'function';
}

const sendJson = sendA2AJson;

/** The Node response behind an express response or a fastify reply (hijacked, so fastify leaves it to us). */
function rawResponse(res: unknown): ServerResponse {
  const r = res as { raw?: ServerResponse; hijack?: () => void };
  if (r.raw && typeof r.hijack === 'function') {
    r.hijack();
    return r.raw;
  }
  return res as ServerResponse;
}

/**
 * Writes a stream as server-sent events. As the SDK's express router does, it waits for the first event before
 * sending headers: an error at that point is a normal JSON error response; a later one is an `event: error`.
 * Stops pulling events when the client goes away.
 */
async function streamSse(
  res: unknown,
  source: AsyncIterable<unknown>,
  toJson: (ev: unknown) => unknown,
  errorEvent: (e: unknown) => unknown,
  firstError: (e: unknown) => [number, string, unknown],
): Promise<void> {
  const { SSE_HEADERS, formatSSEEvent, formatSSEErrorEvent } = sdkRoot();
  const it = source[Symbol.asyncIterator]();
  let first: IteratorResult<unknown>;
  try {
    first = await it.next();
  } catch (e) {
    const [s, ct, body] = firstError(e);
    return sendJson(res, s, ct, body);
  }
  const raw = rawResponse(res);
  let closed = false;
  raw.on('close', () => {
    closed = true;
    void it.return?.().catch(() => undefined);
  });
  raw.writeHead(200, SSE_HEADERS);
  try {
    if (!first.done) raw.write(formatSSEEvent(toJson(first.value)));
    while (!closed) {
      const n = await it.next();
      if (n.done) break;
      raw.write(formatSSEEvent(toJson(n.value)));
    }
  } catch (e) {
    if (!closed) raw.write(formatSSEErrorEvent(errorEvent(e)));
  } finally {
    raw.end();
  }
}
