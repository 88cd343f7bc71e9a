import { ClientCredentialsTokenProvider } from 'nestjs-a2a-auth';
import { runA2ADemo, type A2ADemoOutcome } from './a2a/demo-a2a';
import { runApprovalDemo, type ApprovalDemoOutcome } from './a2a/demo-approval';
import { runDelegationDemo, type DelegationDemoOutcome } from '../../assistant-agent/src/demo-delegation';
import { runInTaskDemo } from './a2a/demo-in-task';
import { devClientsFromEnv, type DevClient } from './dev-clients';
import { bootstrap, type RunningAgent } from './main';

/**
 * `npm run demo`: a calling agent. It reads the Expense agent's Agent Card, takes the OAuth 2.0 token endpoint from
 * it, gets client-credentials tokens for the dev clients, and shows what the agent answers:
 *   1. the submitter submits an expense            → 200/201
 *   2. the submitter tries to approve it           → 403 insufficient_scope, naming `expense:approve`
 *   3. a call with no token                        → 401 with a bare Bearer challenge
 *   4. the approver approves it                    → 200
 *   5. `expense-opaque` lists expenses with an opaque token (introspected by the agent, RFC 7662) → 200
 * then the same over A2A, with the official `@a2a-js/sdk` client and the library's `connectA2AAgent` (card discovery,
 * client-credentials provider, SDK `AuthenticationHandler`) on the JSON-RPC and HTTP+JSON bindings, and on each binding
 * DPoP (RFC 9449): the `expense-dpop` client's DPoP-bound token with a fresh proof per request → 200, then that token
 * "stolen": without a proof, as Bearer, and with a proof from another key → 401 each; then in-task authorization
 * (`a2a/demo-in-task.ts`): a generic client without `skillId`, and a mid-task step-up granted and refused.
 * Then human approval (OpenID Connect CIBA) on each binding, streaming: a submission that needs alice's approval waits
 * in TASK_STATE_AUTH_REQUIRED; the demo approves it (→ COMPLETED), then denies another (→ REJECTED), through the dev
 * authorization server's `/dev/ciba/*` endpoint (see `a2a/demo-approval.ts`). Last, the delegation chain
 * (`apps/assistant-agent/src/demo-delegation.ts`).
 * Env: `A2A_AGENT_URL` (default http://127.0.0.1:3000), the dev client overrides (`DEV_SUBMITTER_ID`, …).
 * If no agent answers there, one is started in-process on a free port (with the embedded dev authorization server).
 */

/** What one call returned, and whether it matched the expectation. */
export interface DemoOutcome {
  /** What was tried. */
  step: string;
  /** Acceptable statuses. */
  expected: number[];
  /** Actual status. */
  status: number;
  /** `WWW-Authenticate` of the response, if any. */
  wwwAuthenticate?: string;
  /** Parsed JSON body (or text). */
  body: unknown;
  /** `status` is expected and, for challenges, the header says what it should. */
  ok: boolean;
}

/** Result of {@link runDemo}. */
export interface DemoResult {
  agentUrl: string;
  tokenUrl: string;
  /** True when no agent answered and the demo started one in-process. */
  startedAgent: boolean;
  outcomes: DemoOutcome[];
  /** The A2A part (official SDK client), one entry per binding and step; empty with `a2a: false`. */
  a2a: A2ADemoOutcome[];
  /** The human-approval part (CIBA), one entry per binding and step; empty with `approval: false`. */
  approval: ApprovalDemoOutcome[];
  /** The delegation part (a second agent calling this one on behalf of its caller); empty with `delegation: false`. */
  delegation: DelegationDemoOutcome[];
  /** Every outcome is ok. */
  ok: boolean;
}

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Base URL of the agent. Default: `A2A_AGENT_URL`, else `http://127.0.0.1:3000`. */
  agentUrl?: string;
  /** Where the dev client ids/secrets come from. Default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Output line sink. Default `console.log`; `false` for silence. */
  log?: ((line: string) => void) | false;
  /** Start an agent in-process when none answers. Default true. */
  startIfMissing?: boolean;
  /** Also run the A2A part with the official SDK client. Default true. */
  a2a?: boolean;
  /** Include the opaque-token step (needs an agent with `introspection`, as the sample has with its dev server). Default true. */
  opaque?: boolean;
  /** Include the DPoP steps in the A2A part (needs an agent with `dpop` `'allowed'` or `'required'`). Default true. */
  dpop?: boolean;
  /** Include the human-approval steps (needs the embedded dev authorization server, whose `/dev/ciba/*` endpoint answers). Default true. */
  approval?: boolean;
  /** Run the delegation part (apps/assistant-agent/src/demo-delegation.ts, its own in-process agents). Default true. */
  delegation?: boolean;
}

/** Timeout of every HTTP call of the demo, milliseconds. */
const TIMEOUT_MS = 10_000;

/** Reads `securitySchemes.*.oauth2SecurityScheme.flows.clientCredentials.tokenUrl` from an A2A v1.0 card. */
export function tokenUrlFromCard(card: unknown): string {
  const schemes =
    (card as { securitySchemes?: Record<string, { oauth2SecurityScheme?: { flows?: { clientCredentials?: { tokenUrl?: unknown } } } }> })?.securitySchemes ??
    {};
  const preferred = schemes.oauth2 ? [schemes.oauth2, ...Object.values(schemes)] : Object.values(schemes);
  for (const s of preferred) {
    const url = s?.oauth2SecurityScheme?.flows?.clientCredentials?.tokenUrl;
    if (typeof url === 'string' && url) return url;
  }
  throw new Error('the Agent Card advertises no OAuth 2.0 client-credentials tokenUrl');
}

/** Fetches the card; `undefined` when nothing answers (connection refused, timeout). */
async function fetchCard(agentUrl: string): Promise<unknown | undefined> {
  let res: Response;
  try {
    res = await fetch(new URL('/.well-known/agent-card.json', agentUrl), {
      headers: { accept: 'application/json', 'a2a-version': '1.0' },
      signal: AbortSignal.timeout(3000),
    });
  } catch {
    return undefined;
  }
  if (!res.ok) throw new Error(`GET ${agentUrl}/.well-known/agent-card.json → HTTP ${res.status}`);
  return res.json();
}

async function call(url: string, init: { method: string; token?: string; json?: unknown }) {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, {
    method: init.method,
    headers,
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: res.status, wwwAuthenticate: res.headers.get('www-authenticate') ?? undefined, body };
}

/**
 * Runs the demo and returns every outcome (also printed through `log`). Does not exit the process.
 * @throws Error when the card or a token cannot be obtained (the agent answered but is misconfigured).
 */
export async function runDemo(o: DemoOptions = {}): Promise<DemoResult> {
  const env = o.env ?? process.env;
  const log = o.log === false ? () => undefined : (o.log ?? ((l: string) => console.log(l)));
  let agentUrl = (o.agentUrl ?? (env.A2A_AGENT_URL || 'http://127.0.0.1:3000')).replace(/\/+$/, '');
  let started: RunningAgent | undefined;
  try {
    let card = await fetchCard(agentUrl);
    if (card === undefined) {
      if (o.startIfMissing === false) throw new Error(`no agent answers at ${agentUrl}`);
      log(`No agent answers at ${agentUrl}; starting the Expense agent in-process (embedded dev authorization server)…`);
      started = await bootstrap({ port: 0, env: { ...env, PORT: undefined, PUBLIC_URL: undefined, HOST: undefined }, logger: false, banner: false });
      agentUrl = started.url;
      card = await fetchCard(agentUrl);
      if (card === undefined) throw new Error(`the in-process agent does not answer at ${agentUrl}`);
    }
    const tokenUrl = tokenUrlFromCard(card);
    log(`Agent Card   ${agentUrl}/.well-known/agent-card.json  (${(card as { name?: string }).name ?? 'unnamed agent'})`);
    log(`Token URL    ${tokenUrl}  (from securitySchemes.oauth2 clientCredentials)`);

    const { submitter, approver, dpop, opaque } = devClientsFromEnv(env);
    const outcomes: DemoOutcome[] = [];
    const record = (step: string, expected: number[], r: { status: number; wwwAuthenticate?: string; body: unknown }, check = true) => {
      const out: DemoOutcome = { step, expected, ...r, ok: expected.includes(r.status) && check };
      outcomes.push(out);
      log(`${out.ok ? 'OK  ' : 'FAIL'} ${step}: ${r.status} (expected ${expected.join(' or ')})`);
      if (r.wwwAuthenticate) log(`       WWW-Authenticate: ${r.wwwAuthenticate}`);
      log(`       ${JSON.stringify(r.body)}`);
      return out;
    };
    // The library's client-credentials provider (RFC 6749 §4.4, client_secret_basic, cached per client and scopes).
    const tokenFor = (c: DevClient) =>
      new ClientCredentialsTokenProvider({ tokenUrl, clientId: c.clientId, clientSecret: c.clientSecret, scopes: c.scopes }).getAccessToken();

    const submitterToken = await tokenFor(submitter);
    log(`Got a token for ${submitter.clientId} (scope "${submitter.scopes.join(' ')}")`);
    const submitted = record(
      `${submitter.clientId} submits an expense (POST /expenses)`,
      [200, 201],
      await call(`${agentUrl}/expenses`, {
        method: 'POST',
        token: submitterToken,
        json: { amount: 42.5, currency: 'EUR', description: 'Taxi to the airport' },
      }),
    );
    const id = (submitted.body as { id?: unknown })?.id;
    const expenseId = typeof id === 'string' ? id : 'unknown';

    const denied = await call(`${agentUrl}/expenses/${encodeURIComponent(expenseId)}/approve`, { method: 'POST', token: submitterToken });
    record(
      `${submitter.clientId} tries to approve it (POST /expenses/${expenseId}/approve)`,
      [403],
      denied,
      /error="insufficient_scope"/.test(denied.wwwAuthenticate ?? '') && /scope="expense:approve"/.test(denied.wwwAuthenticate ?? ''),
    );

    const anonymous = await call(`${agentUrl}/expenses`, { method: 'GET' });
    record(
      'a caller with no token lists expenses (GET /expenses)',
      [401],
      anonymous,
      /^Bearer /i.test(anonymous.wwwAuthenticate ?? '') && !/error=/.test(anonymous.wwwAuthenticate ?? ''),
    );

    const approverToken = await tokenFor(approver);
    log(`Got a token for ${approver.clientId} (scope "${approver.scopes.join(' ')}")`);
    record(
      `${approver.clientId} approves it (POST /expenses/${expenseId}/approve)`,
      [200, 201],
      await call(`${agentUrl}/expenses/${encodeURIComponent(expenseId)}/approve`, { method: 'POST', token: approverToken }),
    );

    if (o.opaque !== false) {
      // An opaque token says nothing by itself: the agent asks the authorization server about it (RFC 7662).
      const opaqueToken = await tokenFor(opaque);
      log(`Got an opaque token for ${opaque.clientId} (scope "${opaque.scopes.join(' ')}")`);
      record(
        `${opaque.clientId} lists expenses with an opaque token, checked by introspection (GET /expenses)`,
        [200],
        await call(`${agentUrl}/expenses`, { method: 'GET', token: opaqueToken }),
      );
    }

    let a2a: A2ADemoOutcome[] = [];
    if (o.a2a !== false) {
      log('A2A (official @a2a-js/sdk client + nestjs-a2a-auth connectA2AAgent):');
      a2a = await runA2ADemo({
        agentUrl,
        submitter: { id: submitter.clientId, secret: submitter.clientSecret },
        approver: { id: approver.clientId, secret: approver.clientSecret },
        dpop: o.dpop === false ? undefined : { id: dpop.clientId, secret: dpop.clientSecret },
      });
      // In-task authorization (A2A §7.6): a generic client without skillId, and a mid-task step-up granted and refused.
      a2a.push(
        ...(await runInTaskDemo({
          agentUrl,
          submitter: { id: submitter.clientId, secret: submitter.clientSecret },
          approver: { id: approver.clientId, secret: approver.clientSecret },
        })),
      );
      for (const x of a2a) {
        log(`${x.ok ? 'OK  ' : 'FAIL'} [${x.binding}] ${x.step}: ${x.status} (expected ${x.expected})`);
        if (x.wwwAuthenticate) log(`       WWW-Authenticate: ${x.wwwAuthenticate}`);
      }
    }

    let approval: ApprovalDemoOutcome[] = [];
    if (o.approval !== false) {
      // The dev authorization server issues the card's token URL; its /dev/ciba endpoint plays alice's device.
      log('Human approval (OpenID Connect CIBA; the demo answers for alice at the dev server):');
      approval = await runApprovalDemo({
        agentUrl,
        devAuthUrl: new URL(tokenUrl).origin,
        submitter: { id: submitter.clientId, secret: submitter.clientSecret },
      });
      for (const x of approval) {
        log(`${x.ok ? 'OK  ' : 'FAIL'} [${x.binding}] ${x.step}: ${x.states.join(' → ')} (expected … → ${x.expected})`);
        for (const t of x.texts) if (t) log(`       ${t}`);
      }
    }

    const delegation = o.delegation === false ? [] : await runDelegationDemo({ log });

    const ok = outcomes.every((x) => x.ok) && a2a.every((x) => x.ok) && approval.every((x) => x.ok) && delegation.every((x) => x.ok);
    log(ok ? 'All outcomes as expected.' : 'Some outcomes differ from what was expected.');
    return { agentUrl, tokenUrl, startedAgent: started !== undefined, outcomes, a2a, approval, delegation, ok };
  } finally {
    await started?.close();
  }
}

if (require.main === module) {
  runDemo().then(
    (r) => process.exit(r.ok ? 0 : 1),
    (err: Error) => {
      console.error(`demo failed: ${err.message}`);
      process.exit(1);
    },
  );
}
