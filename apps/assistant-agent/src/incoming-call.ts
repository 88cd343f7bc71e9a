import { AsyncLocalStorage } from 'node:async_hooks';

/** The A2A binding a call came in on (the Assistant agent calls the Expense agent on the same one). */
export type AssistantBinding = 'JSONRPC' | 'HTTP+JSON';

/** What the executor needs from the HTTP request it serves, and nothing else. */
export interface IncomingCall {
  /**
   * The caller's access token, already verified by the library's guard. It lives only as long as the request's
   * asynchronous context: the executor hands it to the token exchange (RFC 8693 `subject_token`) and never stores or
   * logs it (the library's `ServerCallContext` deliberately leaves the `Authorization` header out).
   */
  readonly token: string;
  /** The binding of the request. */
  readonly binding: AssistantBinding;
}

/** Carries {@link IncomingCall} from the A2A controllers to the executor, for the duration of one request. */
export const incomingCall = new AsyncLocalStorage<IncomingCall>();
