import { randomUUID } from 'node:crypto';
import type { Message, SendMessageRequest, StreamResponse, Task } from '@a2a-js/sdk';
import type { Client } from '@a2a-js/sdk/client';
import { IN_TASK_AUTH_EXTENSION_URI, type A2AAuthorizationRequest } from '../core/in-task-authorization';
import { ClientCredentialsError } from './errors';

/** `TaskState.TASK_STATE_AUTH_REQUIRED` (A2A v1.0). */
const AUTH_REQUIRED = 8;

/**
 * A task is in `TASK_STATE_AUTH_REQUIRED` and the client did not continue it (A2A v1.0 §7.6). `reason`:
 * - `scope_not_allowed`: the agent asks for scopes outside `stepUpScopes` (the client never requests those);
 * - `no_request`: the task carries no authorization request of the library's extension (e.g. a human approval);
 * - `too_many_rounds`: the agent kept asking after `maxStepUps` follow-ups;
 * - `unsupported`: the client acts on behalf of another caller (`onBehalfOf`), whose token it cannot widen.
 * The `task` is still waiting: another client with those scopes, or the user, may continue it.
 */
export class A2AAuthorizationRequiredError extends ClientCredentialsError {
  constructor(
    readonly reason: 'scope_not_allowed' | 'no_request' | 'too_many_rounds' | 'unsupported',
    readonly task: Task,
    readonly request?: A2AAuthorizationRequest,
  ) {
    super(`task ${task.id} needs more authorization (${reason})` + (request ? `: scopes ${request.scopes.join(' ')} for ${request.operation}` : ''));
  }
}

/** Options of {@link sendMessageWithStepUp}. */
export interface StepUpOptions {
  /** Scopes the client may request when a task asks for more. Default `[]`: every such task is an {@link A2AAuthorizationRequiredError}. */
  stepUpScopes?: readonly string[];
  /** Follow-ups per call at most. Default 3. */
  maxStepUps?: number;
  /** A client whose requests carry a token with exactly these scopes (built by {@link connectA2AAgent}). */
  clientForScopes?: (scopes: readonly string[]) => Promise<Client>;
  /** Why step-up is impossible for this client (e.g. `onBehalfOf`); surfaced as `unsupported`. */
  unsupported?: boolean;
}

/**
 * The library's authorization request in the status message of a task in `TASK_STATE_AUTH_REQUIRED` (a `data` part
 * `{ authorizationRequest }` of the in-task authorization extension), or `undefined`.
 */
export function authorizationRequestOf(task: Task): A2AAuthorizationRequest | undefined {
  for (const p of task.status?.message?.parts ?? []) {
    if (p.content?.$case !== 'data') continue;
    const r = (p.content.value as { authorizationRequest?: A2AAuthorizationRequest } | null)?.authorizationRequest;
    if (r && r.extension === IN_TASK_AUTH_EXTENSION_URI && r.type === 'oauth2_scopes' && Array.isArray(r.scopes) && typeof r.operation === 'string') {
      return r;
    }
  }
  return undefined;
}

/**
 * Whether the task's status message is a human approval (the `humanApproval` data part of the library's human approval
 * extension, named here as a literal: client/ does not import the Nest side): no follow-up is due.
 */
function isHumanApproval(task: Task): boolean {
  return (task.status?.message?.parts ?? []).some(
    (p) => p.content?.$case === 'data' && typeof p.content.value === 'object' && p.content.value !== null && 'humanApproval' in p.content.value,
  );
}

/**
 * The one decision of both {@link sendMessageWithStepUp} and {@link sendMessageStreamWithStepUp}: for a task in
 * `TASK_STATE_AUTH_REQUIRED`, checks the client may ask for the requested scopes and sends the follow-up message on
 * the same task with a token for exactly those scopes (that message only). Returns what the follow-up answers.
 */
async function continueTask(task: Task, params: SendMessageRequest, o: StepUpOptions, round: number): Promise<Message | Task> {
  const request = authorizationRequestOf(task);
  if (!request) throw new A2AAuthorizationRequiredError('no_request', task);
  if (o.unsupported || !o.clientForScopes) throw new A2AAuthorizationRequiredError('unsupported', task, request);
  const allowed = new Set(o.stepUpScopes ?? []);
  if (!request.scopes.every((s) => allowed.has(s))) throw new A2AAuthorizationRequiredError('scope_not_allowed', task, request);
  if (round >= (o.maxStepUps ?? 3)) throw new A2AAuthorizationRequiredError('too_many_rounds', task, request);
  const stepUp = await o.clientForScopes(request.scopes);
  const message: Message = {
    messageId: randomUUID(),
    contextId: task.contextId,
    taskId: task.id,
    role: 1 as Message['role'], // ROLE_USER
    parts: [{ content: { $case: 'text', value: `authorization for ${request.operation}` }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
    metadata: undefined,
    extensions: [IN_TASK_AUTH_EXTENSION_URI],
    referenceTaskIds: [],
  };
  // No request-level metadata either: a skillId there would put the follow-up through that skill's check again.
  return stepUp.sendMessage({ ...params, message, metadata: undefined });
}

/**
 * `client.sendMessage(params)` that handles `TASK_STATE_AUTH_REQUIRED` itself: when the answer is a task waiting for
 * scopes that are all in `stepUpScopes`, it obtains a token with exactly those scopes and sends a follow-up message on
 * the same task (same `taskId` and `contextId`) with it, and returns what that gives (repeating for a later request,
 * at most `maxStepUps` times). The follow-up's token is used for that message only.
 * @throws A2AAuthorizationRequiredError when it cannot continue; token errors from the provider
 *   (`TokenEndpointError` `invalid_scope` when the authorization server will not grant them).
 */
export async function sendMessageWithStepUp(client: Client, params: SendMessageRequest, o: StepUpOptions = {}): Promise<Message | Task> {
  let r = await client.sendMessage(params);
  for (let round = 0; ; round++) {
    if ('messageId' in r || r.status?.state !== AUTH_REQUIRED) return r;
    r = await continueTask(r, params, o, round);
  }
}

/**
 * `client.sendMessageStream(params)` that handles `TASK_STATE_AUTH_REQUIRED` itself (A2A v1.0 §7.6): it yields every
 * event of the stream as it comes; after a status update (or task) in `TASK_STATE_AUTH_REQUIRED` with the library's
 * `authorizationRequest` part, it sends the follow-up exactly as {@link sendMessageWithStepUp} does (same rules, token
 * for exactly the requested scopes, that message only) and keeps yielding the original stream, which the agent keeps
 * open and which carries the rest of the task. A human approval (`humanApproval` part) needs no follow-up: the events
 * are just yielded on. The follow-up's own answer is not yielded (the original stream carries the same states).
 * @throws A2AAuthorizationRequiredError after yielding the event, when it cannot continue (the stream is closed; the
 *   task still waits); token errors from the provider; whatever the SDK stream throws.
 */
export async function* sendMessageStreamWithStepUp(
  client: Client,
  params: SendMessageRequest,
  o: StepUpOptions = {},
): AsyncGenerator<StreamResponse, void, undefined> {
  let task: Task | undefined;
  let round = 0;
  // A request already answered (a task snapshot and a status update can both carry it): one follow-up per request.
  let answered: A2AAuthorizationRequest | undefined;
  for await (const ev of client.sendMessageStream(params)) {
    const p = ev.payload;
    let waiting: Task | undefined;
    if (p?.$case === 'task') {
      task = p.value;
      if (task.status?.state === AUTH_REQUIRED) waiting = task;
    } else if (p?.$case === 'statusUpdate' && p.value.status?.state === AUTH_REQUIRED) {
      const base: Task = task ?? { id: p.value.taskId, contextId: p.value.contextId, status: undefined, artifacts: [], history: [], metadata: undefined };
      waiting = task = { ...base, id: p.value.taskId, contextId: p.value.contextId, status: p.value.status };
    } else if (p?.$case === 'statusUpdate' && task) {
      task = { ...task, status: p.value.status };
    }
    yield ev;
    if (!waiting || isHumanApproval(waiting)) continue;
    const request = authorizationRequestOf(waiting);
    if (request && answered && request.operation === answered.operation && request.expiresAt === answered.expiresAt) continue;
    answered = request;
    await continueTask(waiting, params, o, round++);
  }
}
