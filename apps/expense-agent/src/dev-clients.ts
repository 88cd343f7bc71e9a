/**
 * The development OAuth 2.0 clients of the embedded dev authorization server (and of `npm run demo`).
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
  /** Format of its access tokens: `'jwt'` (RFC 9068, default) or `'opaque'` (a random string the resource server introspects, RFC 7662). */
  accessTokenFormat?: 'jwt' | 'opaque';
  /** Only DPoP-bound access tokens (RFC 9449 §5, client metadata `dpop_bound_access_tokens`): a token request without a proof is refused. Default false. */
  dpopBoundAccessTokens?: boolean;
}

/** A resource server's credentials for the introspection endpoint (RFC 7662 §2.1, `client_secret_basic`); it gets no tokens. */
export interface DevIntrospector {
  /** `client_id`. */
  clientId: string;
  /** `client_secret`. */
  clientSecret: string;
}

/** The scope catalog of the Expense Reimbursement Agent: scope → description (advertised in the Agent Card). */
export const EXPENSE_SCOPES: Readonly<Record<string, string>> = Object.freeze({
  'expense:submit': 'Submit expense claims for reimbursement',
  'expense:approve': 'Approve submitted expense claims',
  'expense:approve-large': 'Approve expense claims above the approval limit (asked for mid-task)',
  'expense:read': 'List and read expense claims',
});

/** Built-in defaults (public; for development only). */
export const DEV_CLIENT_DEFAULTS = Object.freeze({
  submitter: { clientId: 'expense-submitter', clientSecret: 'submitter-secret', scopes: ['expense:submit', 'expense:read'] },
  /** `expense:approve-large` is optional: granted only when requested (mid-task step-up). */
  approver: { clientId: 'expense-approver', clientSecret: 'approver-secret', scopes: ['expense:approve', 'expense:read', 'expense:approve-large'] },
  /** Gets DPoP-bound JWT access tokens only (RFC 9449). */
  dpop: { clientId: 'expense-dpop', clientSecret: 'dpop-secret', scopes: ['expense:submit', 'expense:read'], dpopBoundAccessTokens: true },
  /** Gets opaque access tokens, which the agent checks at the introspection endpoint (RFC 7662). */
  opaque: { clientId: 'expense-opaque', clientSecret: 'opaque-secret', scopes: ['expense:submit', 'expense:read'], accessTokenFormat: 'opaque' as const },
  /** The agent itself, as a caller of the introspection endpoint. */
  introspector: { clientId: 'expense-agent-introspection', clientSecret: 'introspection-secret' },
});

/** The dev clients, and the agent's own introspection credentials. */
export interface DevClients {
  submitter: DevClient;
  approver: DevClient;
  /** DPoP-bound tokens only. */
  dpop: DevClient;
  /** Opaque tokens (introspected). */
  opaque: DevClient;
  /** The resource server's credentials for the introspection endpoint. */
  introspector: DevIntrospector & { secretFrom?: string };
}

/**
 * Reads the dev clients from the environment: `DEV_SUBMITTER_ID`, `DEV_SUBMITTER_SECRET`, `DEV_APPROVER_ID`,
 * `DEV_APPROVER_SECRET`, `DEV_DPOP_ID`, `DEV_DPOP_SECRET`, `DEV_OPAQUE_ID`, `DEV_OPAQUE_SECRET`, `DEV_INTROSPECTION_ID`,
 * `DEV_INTROSPECTION_SECRET`; each falls back to {@link DEV_CLIENT_DEFAULTS}. Empty values count as unset.
 * @throws Error when two of them share a client id.
 */
export function devClientsFromEnv(env: Record<string, string | undefined> = process.env): DevClients {
  const pick = (role: 'submitter' | 'approver' | 'dpop' | 'opaque', prefix: string): DevClient => {
    const d: DevClient = DEV_CLIENT_DEFAULTS[role];
    const id = env[`${prefix}_ID`] || d.clientId;
    const secret = env[`${prefix}_SECRET`];
    return { ...d, clientId: id, clientSecret: secret || d.clientSecret, scopes: [...d.scopes], secretFrom: secret ? `${prefix}_SECRET` : undefined };
  };
  const isecret = env.DEV_INTROSPECTION_SECRET;
  const clients: DevClients = {
    submitter: pick('submitter', 'DEV_SUBMITTER'),
    approver: pick('approver', 'DEV_APPROVER'),
    dpop: pick('dpop', 'DEV_DPOP'),
    opaque: pick('opaque', 'DEV_OPAQUE'),
    introspector: {
      clientId: env.DEV_INTROSPECTION_ID || DEV_CLIENT_DEFAULTS.introspector.clientId,
      clientSecret: isecret || DEV_CLIENT_DEFAULTS.introspector.clientSecret,
      secretFrom: isecret ? 'DEV_INTROSPECTION_SECRET' : undefined,
    },
  };
  if (clients.submitter.clientId === clients.approver.clientId) {
    throw new Error(`DEV_SUBMITTER_ID and DEV_APPROVER_ID must differ (both are ${JSON.stringify(clients.submitter.clientId)})`);
  }
  const envName: Record<keyof DevClients, string> = {
    submitter: 'SUBMITTER',
    approver: 'APPROVER',
    dpop: 'DPOP',
    opaque: 'OPAQUE',
    introspector: 'INTROSPECTION',
  };
  const seen = new Map<string, string>();
  for (const role of Object.keys(envName) as Array<keyof DevClients>) {
    const id = clients[role].clientId;
    const other = seen.get(id);
    if (other) throw new Error(`DEV_${other}_ID and DEV_${envName[role]}_ID must differ (both are ${JSON.stringify(id)})`);
    seen.set(id, envName[role]);
  }
  return clients;
}
