import type { A2AAuthModuleOptions } from 'nestjs-a2a-auth';
import { httpUrl } from '../../expense-agent/src/config';

/** The skill of the Assistant agent. */
export const FILE_EXPENSE_SKILL = 'file-expense-for-me';
/** The scope {@link FILE_EXPENSE_SKILL} requires (the Assistant agent's own scope). */
export const FILE_EXPENSE_SCOPE = 'assistant:file-expense';
/** The scope catalog of the Assistant agent (advertised in its card): scope → description. */
export const ASSISTANT_SCOPES: Readonly<Record<string, string>> = Object.freeze({
  [FILE_EXPENSE_SCOPE]: 'Ask the assistant to file an expense claim with the Expense agent on your behalf',
});
/** The Expense agent's skill the Assistant agent calls, and the scope it forwards. */
export const EXPENSE_SUBMIT_SKILL = 'submit-expense';

/** Default listening port of the Assistant agent. */
export const DEFAULT_ASSISTANT_PORT = 3100;
/** Default longest delegation chain the Assistant agent accepts from its own callers (actors). */
export const DEFAULT_ASSISTANT_MAX_CHAIN = 2;

/**
 * Environment variables of the Assistant agent (all optional in the dev setup; see README.md "Delegation").
 */
export const ASSISTANT_ENV = {
  /** Listening port. Default 3100. */
  port: 'ASSISTANT_PORT',
  /** Public base URL (the card's URL and the audience of its tokens). Default `http://127.0.0.1:${ASSISTANT_PORT}`. */
  publicUrl: 'ASSISTANT_PUBLIC_URL',
  /** Base URL of the Expense agent. Unset: the dev setup starts one in-process (with the dev authorization server). */
  expenseAgentUrl: 'EXPENSE_AGENT_URL',
  /** Audience (`resource`, RFC 8707) of the exchanged tokens. Default `EXPENSE_AGENT_URL`. */
  expenseAudience: 'EXPENSE_AUDIENCE',
  /** Port of the in-process Expense agent of the dev setup. Default 0 (a free port). */
  expensePort: 'EXPENSE_PORT',
  /** The Assistant agent's client id at the authorization server. Default `DEV_ASSISTANT_ID`, else `assistant-agent`. */
  clientId: 'ASSISTANT_CLIENT_ID',
  /** Its client secret (`client_secret_basic`). Default `DEV_ASSISTANT_SECRET`, else the dev default. */
  clientSecret: 'ASSISTANT_CLIENT_SECRET',
  /** Most actors a token reaching the Assistant agent may already carry. Default 2. */
  maxChain: 'ASSISTANT_DELEGATION_MAX_CHAIN',
} as const;

/** Everything the Assistant agent is configured with. */
export interface AssistantSettings {
  /** Public base URL, no trailing slash: the card's URL and the audience its tokens must name. */
  publicUrl: string;
  /** Trusted issuer (`iss`). */
  issuer: string;
  /** JWKS of the issuer. */
  jwksUri: string;
  /** Token endpoint advertised in the card (where callers get tokens for it). */
  tokenUrl: string;
  /** The Expense agent's base URL (its card is read from there). */
  expenseAgentUrl: string;
  /** `resource` of the exchanged tokens (the Expense agent's audience). */
  expenseAudience: string;
  /** The Assistant agent's own client credentials (token exchange and `actor_token`). Never logged. */
  clientId: string;
  clientSecret: string;
  /** Most actors a token reaching the Assistant agent may carry (1–16). */
  maxChainLength: number;
}

/**
 * The library options of the Assistant agent: a resource server for its own audience, with one scope, delegated tokens
 * accepted from any upstream agent (the Expense agent decides what it trusts), and a card with both A2A bindings.
 */
export function assistantAuthOptions(s: AssistantSettings): A2AAuthModuleOptions {
  return {
    issuer: s.issuer,
    audience: s.publicUrl,
    jwksUri: s.jwksUri,
    tokenUrl: s.tokenUrl,
    scopes: { ...ASSISTANT_SCOPES },
    delegation: { accept: true, maxChainLength: s.maxChainLength },
    card: {
      name: 'Expense Assistant Agent',
      description:
        'Files expense claims with the Expense Reimbursement Agent on behalf of its caller (OAuth 2.0 token exchange, RFC 8693). A sample A2A agent secured by nestjs-a2a-auth.',
      version: '0.1.0',
      provider: { organization: 'Example Corp (nestjs-a2a-auth sample)', url: 'https://example.com' },
      url: s.publicUrl,
      interfaces: [
        { url: `${s.publicUrl}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
        { url: s.publicUrl, protocolBinding: 'HTTP+JSON', protocolVersion: '1.0' },
      ],
      capabilities: { streaming: false },
    },
  };
}

/**
 * Parses `ASSISTANT_DELEGATION_MAX_CHAIN`: an integer from 1 to 16; default {@link DEFAULT_ASSISTANT_MAX_CHAIN}.
 * @throws Error naming the variable on anything else.
 */
export function parseMaxChain(v: string | undefined): number {
  if (v === undefined || v.trim() === '') return DEFAULT_ASSISTANT_MAX_CHAIN;
  const n = /^\d+$/.test(v.trim()) ? Number(v.trim()) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 16) throw new Error(`${ASSISTANT_ENV.maxChain} must be an integer from 1 to 16, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * `ASSISTANT_PUBLIC_URL` without a trailing slash, defaulting to `http://127.0.0.1:<port>`.
 * @throws Error naming `ASSISTANT_PUBLIC_URL` when it is not an absolute http(s) URL, or when it is unset and
 *   `nodeEnv` is `production` (a deployed agent's card must not advertise a loopback address).
 */
export function assistantPublicUrl(v: string | undefined, port: number, nodeEnv?: string): string {
  if (v) return httpUrl(ASSISTANT_ENV.publicUrl, v, "the Assistant agent's public base URL").replace(/\/+$/, '');
  if (nodeEnv === 'production')
    throw new Error(`${ASSISTANT_ENV.publicUrl} is required with NODE_ENV=production (the card would advertise http://127.0.0.1:${port})`);
  return `http://127.0.0.1:${port}`;
}
