import type { A2ACaller } from './caller';
import { AuthError } from './errors';
import type { DelegationPolicy } from './delegation';
import { assertAuthorized } from './route-policy';

/**
 * URI of the library's A2A extension for in-task authorization (A2A v1.0 §7.6: `TASK_STATE_AUTH_REQUIRED`), declared in
 * the card's `capabilities.extensions`. A task that waits for more scopes carries, in its status message, one `data`
 * part shaped as {@link A2AAuthorizationRequest}.
 */
export const IN_TASK_AUTH_EXTENSION_URI = 'urn:nestjs-a2a-auth:extension:in-task-authorization:v1';

/**
 * The machine-readable request of a task in `TASK_STATE_AUTH_REQUIRED` (the `data` part of its status message, key
 * `authorizationRequest`): what the client must obtain, and where, before it sends a follow-up message on the same task.
 */
export interface A2AAuthorizationRequest {
  /** The extension URI ({@link IN_TASK_AUTH_EXTENSION_URI}). */
  extension: string;
  /** `oauth2_scopes`: get an access token with these scopes (RFC 6749 §3.3) from the same authorization server. */
  type: 'oauth2_scopes';
  /** Every scope the pending operation needs (the new token must grant all of them). */
  scopes: string[];
  /** RFC 8707 / RFC 9728 resource identifier of the agent, when it has one. */
  resource?: string;
  /** RFC 9728 protected resource metadata URL of the agent, when it has a resource identifier. */
  resourceMetadata?: string;
  /** The operation the new token authorizes, and nothing else (§7.6.4), e.g. `approve-expense:9c1f`. */
  operation: string;
  /** When the request lapses (ISO 8601); the task is then rejected. */
  expiresAt: string;
}

/** Who owns a task, as far as a follow-up token must match it. */
export interface TaskOwner {
  /** `iss`. */
  issuer: string;
  /** `sub`; `undefined` when the token had none. */
  subject?: string;
  /** `client_id` (or `azp`). */
  clientId?: string;
}

/** One operation of one task waiting for more scopes. Serializable (no functions), so a shared store can hold it. */
export interface PendingAuthorization {
  /** The task. */
  taskId: string;
  /** The task's owner at the time of the request. */
  owner: TaskOwner;
  /** Scopes the follow-up token must grant. */
  scopes: string[];
  /** The operation id the grant is for (§7.6.4). */
  operation: string;
  /** The skill that asked, when known (audit). */
  skillId?: string;
  /** Expiry, epoch milliseconds. */
  expiresAt: number;
}

/**
 * Where pending in-task authorizations are kept, one per task. The default ({@link InMemoryPendingAuthorizationStore})
 * is per process: with several instances the follow-up message must reach the instance that holds the waiting task
 * (a shared store, e.g. on Redis, is a later step: the executor that waits is in one process's memory too).
 */
export interface PendingAuthorizationStore {
  /** Records the pending operation of a task (replacing any earlier one). */
  put(p: PendingAuthorization): Promise<void>;
  /** The pending operation of a task, unless expired. */
  get(taskId: string): Promise<PendingAuthorization | undefined>;
  /** Removes and returns the pending operation of a task if it is still `operation` (atomic: one follow-up wins). */
  take(taskId: string, operation: string): Promise<PendingAuthorization | undefined>;
  /** Forgets the pending operation of a task. */
  delete(taskId: string): Promise<void>;
}

/** In-process {@link PendingAuthorizationStore}, bounded to `max` entries (oldest dropped first). Default 10000. */
export class InMemoryPendingAuthorizationStore implements PendingAuthorizationStore {
  private readonly map = new Map<string, PendingAuthorization>();

  constructor(
    private readonly max = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  async put(p: PendingAuthorization): Promise<void> {
    this.map.delete(p.taskId);
    this.map.set(p.taskId, { ...p, scopes: [...p.scopes], owner: { ...p.owner } });
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }

  async get(taskId: string): Promise<PendingAuthorization | undefined> {
    const p = this.map.get(taskId);
    if (p && p.expiresAt <= this.now()) {
      this.map.delete(taskId);
      return undefined;
    }
    return p;
  }

  async take(taskId: string, operation: string): Promise<PendingAuthorization | undefined> {
    const p = await this.get(taskId);
    if (!p || p.operation !== operation) return undefined;
    this.map.delete(taskId);
    return p;
  }

  async delete(taskId: string): Promise<void> {
    this.map.delete(taskId);
  }
}

/** The owner of a task as recorded from its verified caller. */
export function taskOwnerOf(caller: Pick<A2ACaller, 'issuer' | 'subject' | 'clientId'>): TaskOwner {
  return { issuer: caller.issuer, subject: caller.subject, clientId: caller.clientId };
}

/**
 * Decides whether a follow-up message's verified caller answers a pending in-task authorization (A2A §7.6.4):
 * the same owner (same `iss` and `sub`, and the same client: a follow-up through another client would let that
 * client act on a task it never started), then the delegation policy and every pending scope through
 * {@link assertAuthorized} (the library's one scope check).
 * @returns `'not_owner'` when the caller is not the task's owner (answer as for an unknown task: its existence is not
 *   revealed); otherwise nothing.
 * @throws AuthError 403 `insufficient_scope` (with the pending scopes), or a delegation reason.
 */
export function checkPendingAnswer(p: PendingAuthorization, caller: A2ACaller, delegation: DelegationPolicy): 'not_owner' | undefined {
  if (caller.issuer !== p.owner.issuer || caller.subject !== p.owner.subject) return 'not_owner';
  if (caller.clientId !== p.owner.clientId) {
    throw new AuthError('insufficient_scope', 'the follow-up comes from another client than the task owner', p.scopes);
  }
  assertAuthorized(caller, p.scopes, delegation);
  return undefined;
}
