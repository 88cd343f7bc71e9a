/**
 * The two development OAuth 2.0 clients of the embedded dev authorization server (and of `npm run demo`).
 * Their ids and secrets are fixed, public defaults (listed in README.md) unless overridden by environment variables.
 * They are only for local development: the dev server refuses to start with `NODE_ENV=production`.
 */

/** One confidential client that uses the client-credentials grant (RFC 6749 §4.4). */
export interface DevClient {
  /** `client_id`. */
  clientId: string;
  /** `client_secret` (sent with `client_secret_basic`, RFC 6749 §2.3.1). */
  clientSecret: string;
  /** Scopes the client may request (space-separated on the wire, RFC 6749 §3.3). */
  scopes: string[];
  /** Environment variable that overrides the secret; `undefined` when the built-in default is used. */
  secretFrom?: string;
}

/** The scope catalog of the Expense Reimbursement Agent: scope → description (advertised in the Agent Card). */
export const EXPENSE_SCOPES: Readonly<Record<string, string>> = Object.freeze({
  'expense:submit': 'Submit expense claims for reimbursement',
  'expense:approve': 'Approve submitted expense claims',
  'expense:read': 'List and read expense claims',
});

/** Built-in defaults (public; for development only). */
export const DEV_CLIENT_DEFAULTS = Object.freeze({
  submitter: { clientId: 'expense-submitter', clientSecret: 'submitter-secret', scopes: ['expense:submit', 'expense:read'] },
  approver: { clientId: 'expense-approver', clientSecret: 'approver-secret', scopes: ['expense:approve', 'expense:read'] },
});

/** The two dev clients. */
export interface DevClients {
  submitter: DevClient;
  approver: DevClient;
}

/**
 * Reads the dev clients from the environment: `DEV_SUBMITTER_ID`, `DEV_SUBMITTER_SECRET`, `DEV_APPROVER_ID`,
 * `DEV_APPROVER_SECRET`; each falls back to {@link DEV_CLIENT_DEFAULTS}. Empty values count as unset.
 */
export function devClientsFromEnv(env: Record<string, string | undefined> = process.env): DevClients {
  const pick = (role: 'submitter' | 'approver', prefix: string): DevClient => {
    const d = DEV_CLIENT_DEFAULTS[role];
    const id = env[`${prefix}_ID`] || d.clientId;
    const secret = env[`${prefix}_SECRET`];
    return { clientId: id, clientSecret: secret || d.clientSecret, scopes: [...d.scopes], secretFrom: secret ? `${prefix}_SECRET` : undefined };
  };
  const clients = { submitter: pick('submitter', 'DEV_SUBMITTER'), approver: pick('approver', 'DEV_APPROVER') };
  if (clients.submitter.clientId === clients.approver.clientId) {
    throw new Error(`DEV_SUBMITTER_ID and DEV_APPROVER_ID must differ (both are ${JSON.stringify(clients.submitter.clientId)})`);
  }
  return clients;
}
