import { randomUUID } from 'node:crypto';
import { SendMessageRequest, type Message, type Task } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions, JsonRpcTransportFactory, RestTransportFactory } from '@a2a-js/sdk/client';
import { agentBaseUrl, connectA2AAgent, DPoPProofSigner, type ConnectedA2AAgent } from 'nestjs-a2a-auth';

/** A client's credentials for {@link runA2ADemo}. */
export interface DemoClientCredentials {
  /** `client_id`. */
  id: string;
  /** `client_secret` (never printed or returned). */
  secret: string;
}

/** Options of {@link runA2ADemo}. */
export interface A2ADemoOptions {
  /** Base URL of the agent (its card is at `<agentUrl>/.well-known/agent-card.json`). */
  agentUrl: string;
  /** A client allowed `expense:submit` (and not `expense:approve`). */
  submitter: DemoClientCredentials;
  /** A client allowed `expense:approve`. */
  approver: DemoClientCredentials;
  /**
   * A client that gets DPoP-bound tokens (RFC 9449) allowed `expense:submit`: adds the DPoP steps on each binding (see
   * {@link runA2ADemo}). Default none (no DPoP steps).
   */
  dpop?: DemoClientCredentials;
  /** Bindings to try. Default both, `['JSONRPC', 'HTTP+JSON']`. */
  bindings?: Array<'JSONRPC' | 'HTTP+JSON'>;
}

/** One A2A call of the demo. */
export interface A2ADemoOutcome {
  /** What was tried, e.g. `submit-expense as expense-submitter`. */
  step: string;
  /** `JSONRPC` or `HTTP+JSON`. */
  binding: string;
  /** The HTTP status expected. */
  expected: number;
  /** The HTTP status seen (200 when the SDK returned a result). */
  status: number;
  /** `WWW-Authenticate` of an error response, when the transport exposes it (HTTP+JSON does). */
  wwwAuthenticate?: string;
  /** The agent's reply data on success, or the error message. */
  detail: unknown;
  /** `status === expected` and, for the stolen-token steps, the `WWW-Authenticate` challenge names the expected error. */
  ok: boolean;
}

/**
 * The A2A part of `npm run demo`: the official `@a2a-js/sdk` client, given only the agent URL and client
 * credentials, with the library's `connectA2AAgent` (card discovery → token endpoint and skill scopes →
 * client-credentials token provider → SDK `AuthenticationHandler`). For each binding:
 *
 * 1. `submit-expense` as the submitter (token for exactly `expense:submit`) → 200, the stored expense;
 * 2. `approve-expense` with the submitter's token (no `expense:approve`) → 403 `insufficient_scope`;
 * 3. `submit-expense` with no token (SDK client without our handler) → 401;
 * 4. `approve-expense` as the approver → 200, the approved expense.
 *
 * With `dpop`, then:
 *
 * 5. `submit-expense` as the DPoP client through the same SDK client and `connectA2AAgent` with `credentials.dpop`
 *    (`Authorization: DPoP <token>` plus a fresh `DPoP` proof on each request) → 200;
 * 6. the "stolen" DPoP-bound token replayed by someone without its private key, with a plain `fetch` so the challenge
 *    can be read on both bindings: `Authorization: DPoP` and no proof → 401 `invalid_dpop_proof` on the `DPoP`
 *    challenge; sent as `Bearer` → 401 `invalid_token`; with a valid proof signed by another key → 401 `invalid_token`
 *    (its thumbprint is not the token's `cnf.jkt`, RFC 9449 §6.1).
 *
 * Never throws for an unexpected status: it reports it (`ok: false`). Throws only when the card cannot be read or a
 * token cannot be obtained (e.g. wrong secret: `TokenEndpointError` with `invalid_client`).
 */
export async function runA2ADemo(o: A2ADemoOptions): Promise<A2ADemoOutcome[]> {
  const out: A2ADemoOutcome[] = [];
  for (const binding of o.bindings ?? (['JSONRPC', 'HTTP+JSON'] as const)) {
    const common = { agentUrl: o.agentUrl, preferredTransports: [binding] };
    const submitter = await connectA2AAgent({
      ...common,
      credentials: { clientId: o.submitter.id, clientSecret: o.submitter.secret },
      skillId: 'submit-expense',
    });
    const approver = await connectA2AAgent({
      ...common,
      credentials: { clientId: o.approver.id, clientSecret: o.approver.secret },
      skillId: 'approve-expense',
    });
    const anonymous = await new ClientFactory(
      ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
        transports: [new JsonRpcTransportFactory(), new RestTransportFactory()],
        preferredTransports: [binding],
      }),
    ).createFromUrl(agentBaseUrl(o.agentUrl));

    const step = async (name: string, expected: number, call: () => Promise<Message | Task>) => {
      let r: A2ADemoOutcome;
      try {
        const res = await call();
        const data = 'messageId' in res && res.parts[0]?.content?.$case === 'data' ? res.parts[0].content.value : res;
        const status = (data as { error?: { status?: number } })?.error?.status ?? 200;
        r = { step: name, binding, expected, status, detail: data, ok: status === expected };
      } catch (e) {
        const err = e as Error & { statusCode?: number; headers?: Record<string, string> };
        const status = err.statusCode ?? Number(/Status: (\d{3})/.exec(err.message)?.[1] ?? /\b(40\d)\b/.exec(err.message)?.[1] ?? 0);
        r = { step: name, binding, expected, status, wwwAuthenticate: err.headers?.['www-authenticate'], detail: err.message, ok: status === expected };
      }
      out.push(r);
      return r;
    };

    const submitted = await step(`submit-expense as ${o.submitter.id}`, 200, () =>
      submitter.client.sendMessage(message('submit-expense', { amount: 42.5, currency: 'EUR', description: `Taxi to the airport (A2A demo, ${binding})` })),
    );
    const id = (submitted.detail as { expense?: { id?: string } })?.expense?.id ?? 'unknown';
    await step(`approve-expense as ${o.submitter.id} (no expense:approve)`, 403, () => submitter.client.sendMessage(message('approve-expense', { id })));
    await step('submit-expense with no token', 401, () =>
      anonymous.sendMessage(message('submit-expense', { amount: 1, currency: 'EUR', description: 'no token' })),
    );
    await step(`approve-expense as ${o.approver.id}`, 200, () => approver.client.sendMessage(message('approve-expense', { id })));

    if (o.dpop) {
      const holder = await connectA2AAgent({
        ...common,
        credentials: { clientId: o.dpop.id, clientSecret: o.dpop.secret, dpop: true },
        skillId: 'submit-expense',
      });
      await step(`submit-expense as ${o.dpop.id} (DPoP-bound token + proof)`, 200, () =>
        holder.client.sendMessage(message('submit-expense', { amount: 7, currency: 'EUR', description: `Train ticket (A2A demo, DPoP, ${binding})` })),
      );
      out.push(...(await stolenTokenSteps(holder, binding)));
    }
  }
  return out;
}

/**
 * Replays the DPoP holder's token as a thief would, without its private key, on one binding. The token is read from
 * the holder's provider (cached, so no new token is requested) and never returned or printed.
 */
async function stolenTokenSteps(holder: ConnectedA2AAgent, binding: 'JSONRPC' | 'HTTP+JSON'): Promise<A2ADemoOutcome[]> {
  const { accessToken, tokenType } = await holder.provider.getToken();
  const iface = holder.auth.interfaces.find((i) => i.protocolBinding === binding);
  const base = (iface?.url ?? '').replace(/\/+$/, '');
  const url = binding === 'JSONRPC' ? base : `${base}/message:send`;
  const request = message('submit-expense', { amount: 1, currency: 'EUR', description: 'stolen token' });
  const body = JSON.stringify(
    binding === 'JSONRPC' ? { jsonrpc: '2.0', id: 1, method: 'SendMessage', params: SendMessageRequest.toJSON(request) } : SendMessageRequest.toJSON(request),
  );
  const thief = new DPoPProofSigner(); // a key pair of its own: the token is bound to the holder's
  const cases: Array<{ step: string; headers: Record<string, string>; error: RegExp }> = [
    { step: 'stolen DPoP-bound token, no proof', headers: { authorization: `DPoP ${accessToken}` }, error: /DPoP [^]*error="invalid_dpop_proof"/ },
    { step: 'stolen DPoP-bound token sent as Bearer', headers: { authorization: `Bearer ${accessToken}` }, error: /^Bearer [^]*error="invalid_token"/ },
    {
      step: 'stolen DPoP-bound token, proof from another key',
      headers: { authorization: `DPoP ${accessToken}`, dpop: await thief.proof({ htm: 'POST', url, accessToken }) },
      error: /DPoP [^]*error="invalid_token"/,
    },
  ];
  const out: A2ADemoOutcome[] = [];
  for (const c of cases) {
    let r: A2ADemoOutcome;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', 'a2a-version': '1.0', ...c.headers },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      let detail: unknown = text;
      try {
        detail = JSON.parse(text);
      } catch {
        // keep the text
      }
      const www = res.headers.get('www-authenticate') ?? undefined;
      r = {
        step: c.step,
        binding,
        expected: 401,
        status: res.status,
        wwwAuthenticate: www,
        detail,
        ok: tokenType === 'DPoP' && res.status === 401 && c.error.test(www ?? ''),
      };
    } catch (e) {
      r = { step: c.step, binding, expected: 401, status: 0, detail: (e as Error).message, ok: false };
    }
    out.push(r);
  }
  return out;
}

/** A user message for a skill (`message.metadata.skillId`) with one JSON data part. */
function message(skillId: string, data: Record<string, unknown>): SendMessageRequest {
  return SendMessageRequest.fromJSON({ message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ data }], metadata: { skillId } } });
}
