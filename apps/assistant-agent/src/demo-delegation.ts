import { randomUUID } from 'node:crypto';
import type { LoggerService } from '@nestjs/common';
import { SendMessageRequest, type Message, type Task } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions, JsonRpcTransportFactory, RestTransportFactory, type Client } from '@a2a-js/sdk/client';
import {
  DEFAULT_DPOP_ALGORITHMS,
  REASONS,
  ClientCredentialsTokenProvider,
  TokenExchangeProvider,
  a2aAuthFetch,
  connectA2AAgent,
  type AuthAuditEvent,
  type AuthReason,
} from 'nestjs-a2a-auth';
import type { Platform } from '../../expense-agent/src/main';
import { EXPENSE_SUBMIT_SKILL, FILE_EXPENSE_SCOPE, FILE_EXPENSE_SKILL } from './config';
import { startDelegationSample, type DelegationSample } from './main';

/** One step of the delegation demo. */
export interface DelegationDemoOutcome {
  /** What was tried. */
  step: string;
  /** The binding the caller used (`JSONRPC` or `HTTP+JSON`). */
  binding: 'JSONRPC' | 'HTTP+JSON';
  /** The Expense agent's HTTP status expected. */
  expected: number;
  /** The Expense agent's HTTP status seen (200 when it filed the expense). */
  status: number;
  /** The Expense agent's `WWW-Authenticate`, on a refusal. */
  wwwAuthenticate?: string;
  /** The Expense agent's audit event of the call (client ids and subjects only, never a token). */
  audit?: AuthAuditEvent;
  /** What the caller got back (the filed expense, or the error). */
  detail: unknown;
  /** Status, challenge and audit reason are what the step expects. */
  ok: boolean;
}

/** Options of {@link runDelegationDemo}. */
export interface DelegationDemoOptions {
  /** Output line sink. Default `console.log`; `false` for silence. */
  log?: ((line: string) => void) | false;
  /** Bindings to try. Default both. */
  bindings?: Array<'JSONRPC' | 'HTTP+JSON'>;
  /** Platform of the two agents. Default `'express'`. */
  platform?: Platform;
  /** Environment for {@link startDelegationSample} (dev client overrides, `A2A_DELEGATION*`). Default: only `NODE_ENV`. */
  env?: Record<string, string | undefined>;
}

/** Nest logger that keeps the library's audit lines (JSON, context `A2AAuthAudit`) and drops the rest but errors. */
export class AuditCapture implements LoggerService {
  /** Every audit event seen, in order. */
  readonly events: AuthAuditEvent[] = [];
  log(message: unknown, ...rest: unknown[]): void {
    this.keep(message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.keep(message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    console.error(message, ...rest);
  }
  private keep(message: unknown, rest: unknown[]): void {
    if (rest[rest.length - 1] !== 'A2AAuthAudit' || typeof message !== 'string') return;
    try {
      const e = JSON.parse(message) as AuthAuditEvent;
      if (e.type === 'a2a.auth') this.events.push(e);
    } catch {
      /* not an event (e.g. the suppression summary) */
    }
  }
  /** The last event about the Expense agent's `submit-expense` (its audit line for the step just run). */
  lastExpenseEvent(since: number): AuthAuditEvent | undefined {
    return this.events
      .slice(since)
      .filter((e) => e.skillId === EXPENSE_SUBMIT_SKILL)
      .pop();
  }
}

/** A user message for a skill with one JSON data part. */
function message(skillId: string, data: Record<string, unknown>): SendMessageRequest {
  return SendMessageRequest.fromJSON({ message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ data }], metadata: { skillId } } });
}

/** The data part of an agent message. */
function dataOf(res: Message | Task): Record<string, unknown> | undefined {
  const v = 'messageId' in res && res.parts[0]?.content?.$case === 'data' ? res.parts[0].content.value : undefined;
  return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
}

/** An official SDK client for `agentUrl` sending one fixed bearer token (the token goes only to that origin). */
async function clientWithToken(agentUrl: string, token: string, binding: string): Promise<Client> {
  const fetchImpl = a2aAuthFetch(
    { getToken: async () => ({ accessToken: token, tokenType: 'Bearer' }), invalidate: () => undefined },
    { allowedOrigins: [new URL(agentUrl).origin] },
  );
  return new ClientFactory(
    ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
      transports: [new JsonRpcTransportFactory({ fetchImpl }), new RestTransportFactory({ fetchImpl })],
      preferredTransports: [binding],
    }),
  ).createFromUrl(`${agentUrl}/`);
}

/**
 * The exact refusal challenge of the Expense agent for a delegation chain it does not accept: the RFC 6750 Bearer
 * challenge with `insufficient_scope` and no `scope` (more scopes would not help), then the RFC 9449 DPoP challenge
 * the sample adds with its default `A2A_DPOP=allowed`.
 */
export function delegationRefusalChallenge(sample: DelegationSample, cardName: string): string {
  const params = `realm="${cardName}", resource_metadata="${sample.expense.publicUrl}/.well-known/oauth-protected-resource"`;
  return (
    `Bearer ${params}, error="insufficient_scope", error_description="${REASONS.delegation_too_deep.description}", ` +
    `DPoP ${params}, algs="${DEFAULT_DPOP_ALGORITHMS.join(' ')}"`
  );
}

/**
 * The delegation part of `npm run demo` (RFC 8693). Starts the delegation sample in-process on 127.0.0.1 (dev
 * authorization server, Expense agent, Assistant agent; see `startDelegationSample`) and stops it at the end, then, on
 * each binding with the official `@a2a-js/sdk` client:
 *
 * (a) the user app → Assistant agent (`file-expense-for-me`, token for the assistant's audience) → Expense agent
 *     (`submit-expense`, token exchanged by the assistant): 200, and the Expense agent's audit line names the user
 *     app as `subject` and the assistant as the actor;
 * (b) a token that was already exchanged twice (two actors) → the Assistant agent, whose own exchange makes a
 *     chain of three actors: the Expense agent refuses 403 `delegation_too_deep` (`A2A_DELEGATION_MAX_CHAIN` 2), and
 *     the assistant answers with that refusal;
 * (c) the rogue agent exchanges the user's token itself and calls the Expense agent: 403 `untrusted_actor`.
 *
 * Prints each step, the `WWW-Authenticate` of each refusal and the Expense agent's audit line (client ids and
 * subjects only). Never throws for an unexpected status (`ok: false`); throws only when the sample cannot start.
 */
export async function runDelegationDemo(o: DelegationDemoOptions = {}): Promise<DelegationDemoOutcome[]> {
  const log = o.log === false ? () => undefined : (o.log ?? ((l: string) => console.log(l)));
  const audit = new AuditCapture();
  const sample = await startDelegationSample({
    platform: o.platform,
    env: o.env ?? { NODE_ENV: process.env.NODE_ENV, ASSISTANT_PORT: '0' },
    logger: audit,
  });
  const out: DelegationDemoOutcome[] = [];
  try {
    const { user, assistant, rogue } = sample.clients;
    const assistantUrl = sample.assistant.url;
    const expenseCard = (await (await fetch(`${sample.expense.url}/.well-known/agent-card.json`)).json()) as { name: string };
    const refused = delegationRefusalChallenge(sample, expenseCard.name);
    log(`Delegation (RFC 8693): ${user.clientId} → Expense Assistant Agent (${assistantUrl}) → Expense agent (${sample.expense.url})`);
    const userResource = { clientId: user.clientId, clientSecret: user.clientSecret, resource: sample.assistant.settings.publicUrl };
    const userScopes = [FILE_EXPENSE_SCOPE, 'expense:submit'];

    const report = (r: DelegationDemoOutcome) => {
      out.push(r);
      log(`${r.ok ? 'OK  ' : 'FAIL'} [${r.binding}] ${r.step}: ${r.status} (expected ${r.expected})`);
      if (r.wwwAuthenticate) log(`       WWW-Authenticate: ${r.wwwAuthenticate}`);
      if (r.audit) log(`       Expense agent audit: ${JSON.stringify(r.audit)}`);
    };
    const viaAssistant = async (step: string, binding: 'JSONRPC' | 'HTTP+JSON', client: Client, expected: number, reason?: AuthReason) => {
      const since = audit.events.length;
      let detail: unknown;
      try {
        detail = dataOf(
          await client.sendMessage(message(FILE_EXPENSE_SKILL, { amount: 12.9, currency: 'EUR', description: `Lunch (delegation demo, ${binding})` })),
        );
      } catch (e) {
        detail = (e as Error).message;
      }
      const err = (detail as { error?: { status?: number; downstream?: { status?: number; wwwAuthenticate?: string } } })?.error;
      const status = err ? (err.downstream?.status ?? err.status ?? 0) : (detail as { expense?: unknown })?.expense ? 200 : 0;
      const ev = audit.lastExpenseEvent(since);
      const www = err?.downstream?.wwwAuthenticate;
      const ok =
        status === expected &&
        (reason
          ? www === refused && ev?.reason === reason
          : ev?.outcome === 'success' && ev.actors?.[0]?.clientId === assistant.clientId && ev.subject === user.clientId);
      report({ step, binding, expected, status, wwwAuthenticate: www, audit: ev, detail, ok });
    };

    for (const binding of o.bindings ?? (['JSONRPC', 'HTTP+JSON'] as const)) {
      // (a) The user app calls the assistant with a token for the assistant's audience.
      const asUser = await connectA2AAgent({ agentUrl: assistantUrl, credentials: userResource, scopes: userScopes, preferredTransports: [binding] });
      await viaAssistant(`(a) ${user.clientId} → assistant → submit-expense on its behalf`, binding, asUser.client, 200);

      // (b) The user's token, already exchanged twice on the way (here by the user app itself, which may exchange its
      // own token and holds the assistant's scope): the assistant's own exchange makes three actors downstream.
      const userToken = await new ClientCredentialsTokenProvider({ tokenUrl: sample.devAuth.tokenUrl, ...userResource, scopes: userScopes }).getAccessToken();
      const hop = new TokenExchangeProvider({ tokenUrl: sample.devAuth.tokenUrl, ...userResource });
      const twice = await hop.getAccessToken({ subjectToken: await hop.getAccessToken({ subjectToken: userToken }) });
      const deep = await clientWithToken(assistantUrl, twice, binding);
      await viaAssistant('(b) a token exchanged twice → assistant → Expense agent (3 actors > 2)', binding, deep, 403, 'delegation_too_deep');

      // (c) The rogue agent exchanges the user's token itself and calls the Expense agent directly.
      const since = audit.events.length;
      let seen: { status: number; www?: string } | undefined;
      const observing: typeof fetch = async (input, init) => {
        const res = await fetch(input, init);
        if (res.status >= 400) seen = { status: res.status, www: res.headers.get('www-authenticate') ?? undefined };
        return res;
      };
      let detail: unknown;
      try {
        const asRogue = await connectA2AAgent({
          agentUrl: sample.expense.url,
          credentials: { clientId: rogue.clientId, clientSecret: rogue.clientSecret, resource: sample.expense.publicUrl },
          skillId: EXPENSE_SUBMIT_SKILL,
          onBehalfOf: userToken,
          preferredTransports: [binding],
          fetch: observing,
        });
        detail = dataOf(await asRogue.client.sendMessage(message(EXPENSE_SUBMIT_SKILL, { amount: 999, currency: 'EUR', description: 'rogue' })));
      } catch (e) {
        detail = (e as Error).message;
      }
      const ev = audit.lastExpenseEvent(since);
      report({
        step: `(c) ${rogue.clientId} exchanges the user's token and calls the Expense agent`,
        binding,
        expected: 403,
        status: seen?.status ?? 200,
        wwwAuthenticate: seen?.www,
        audit: ev,
        detail,
        ok: seen?.status === 403 && seen.www === refused && ev?.reason === 'untrusted_actor',
      });
    }
  } finally {
    await sample.close();
  }
  return out;
}
