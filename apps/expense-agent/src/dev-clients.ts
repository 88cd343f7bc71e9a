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

/**
 * A client that authenticates with `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9; `token_endpoint_auth_method`
 * `private_key_jwt` with its public `jwks` registered): it has no secret. Without `publicJwk`, the dev server generates an
 * ES256 key pair at start, keeps it in memory only, and hands the private key to in-process callers as
 * `DevAuthServer.clientKeys.get(clientId)`.
 */
export interface DevKeyClient {
  /** `client_id` (also the assertion's `iss` and `sub`). */
  clientId: string;
  /** Scopes the client may request. `[]` for a resource server that only introspects. */
  scopes: string[];
  /** Its public key (a public JWK with `kid`), when the private key lives elsewhere. Default: generated at start. */
  publicJwk?: Record<string, unknown>;
  /** May call the introspection endpoint (a resource server). Default false. */
  introspector?: boolean;
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
  /** Authenticates with `private_key_jwt` (no secret); its key pair is generated when the dev server starts. */
  keyed: { clientId: 'expense-keyed', scopes: ['expense:submit', 'expense:read'] },
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
  /** `private_key_jwt` (RFC 7523): no secret; the public key from `DEV_KEYED_PUBLIC_JWK`, else generated at start. */
  keyed: DevKeyClient;
  /** The resource server's credentials for the introspection endpoint. */
  introspector: DevIntrospector & { secretFrom?: string };
}

/**
 * Reads the dev clients from the environment: `DEV_SUBMITTER_ID`, `DEV_SUBMITTER_SECRET`, `DEV_APPROVER_ID`,
 * `DEV_APPROVER_SECRET`, `DEV_DPOP_ID`, `DEV_DPOP_SECRET`, `DEV_OPAQUE_ID`, `DEV_OPAQUE_SECRET`, `DEV_INTROSPECTION_ID`,
 * `DEV_INTROSPECTION_SECRET`, `DEV_KEYED_ID`, `DEV_KEYED_PUBLIC_JWK` (a public JWK as JSON, with `kid`); each falls back
 * to {@link DEV_CLIENT_DEFAULTS}. Empty values count as unset.
 * @throws Error when two of them share a client id, or `DEV_KEYED_PUBLIC_JWK` is not a public JWK.
 */
export function devClientsFromEnv(env: Record<string, string | undefined> = process.env): DevClients {
  const pick = (role: 'submitter' | 'approver' | 'dpop' | 'opaque', prefix: string): DevClient => {
    const d: DevClient = DEV_CLIENT_DEFAULTS[role];
    const id = env[`${prefix}_ID`] || d.clientId;
    const secret = env[`${prefix}_SECRET`];
    return { ...d, clientId: id, clientSecret: secret || d.clientSecret, scopes: [...d.scopes], secretFrom: secret ? `${prefix}_SECRET` : undefined };
  };
  const isecret = env.DEV_INTROSPECTION_SECRET;
  let publicJwk: Record<string, unknown> | undefined;
  if (env.DEV_KEYED_PUBLIC_JWK) {
    try {
      publicJwk = JSON.parse(env.DEV_KEYED_PUBLIC_JWK) as Record<string, unknown>;
    } catch {
      publicJwk = undefined;
    }
    if (!publicJwk || typeof publicJwk !== 'object' || typeof publicJwk.kty !== 'string' || 'd' in publicJwk) {
      throw new Error('DEV_KEYED_PUBLIC_JWK must be a public JWK as JSON (no private "d")');
    }
  }
  const clients: DevClients = {
    submitter: pick('submitter', 'DEV_SUBMITTER'),
    approver: pick('approver', 'DEV_APPROVER'),
    dpop: pick('dpop', 'DEV_DPOP'),
    opaque: pick('opaque', 'DEV_OPAQUE'),
    keyed: {
      clientId: env.DEV_KEYED_ID || DEV_CLIENT_DEFAULTS.keyed.clientId,
      scopes: [...DEV_CLIENT_DEFAULTS.keyed.scopes],
      ...(publicJwk ? { publicJwk } : {}),
    },
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
    keyed: 'KEYED',
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

/**
 * Built-in defaults of the delegation sample's clients (public; for development only):
 * - `assistant`: the Assistant agent itself. It exchanges its callers' tokens (RFC 8693) for Expense-agent tokens,
 *   with its own client-credentials token as `actor_token`, so it may request the Expense scope it forwards.
 * - `user`: the user-facing app that calls the Assistant agent (`assistant:file-expense`). Its token carries `expense:submit` as well, because
 *   the dev server's exchange only narrows scopes: it never grants one the subject token does not hold.
 * - `rogue`: an agent the Expense agent does not trust (not in `A2A_DELEGATION_TRUSTED_ACTORS`).
 */
export const DELEGATION_DEV_CLIENT_DEFAULTS = Object.freeze({
  assistant: { clientId: 'assistant-agent', clientSecret: 'assistant-secret', scopes: ['expense:submit'] },
  user: { clientId: 'assistant-user-app', clientSecret: 'user-app-secret', scopes: ['assistant:file-expense', 'expense:submit'] },
  rogue: { clientId: 'rogue-agent', clientSecret: 'rogue-secret', scopes: ['expense:submit'] },
});

/** The delegation sample's dev clients. */
export interface DelegationDevClients {
  /** The Assistant agent (the actor of the exchanged tokens). */
  assistant: DevClient;
  /** The user-facing app allowed to call the Assistant agent. */
  user: DevClient;
  /** An untrusted agent. */
  rogue: DevClient;
}

/**
 * Reads the delegation sample's dev clients from the environment: `DEV_ASSISTANT_ID`, `DEV_ASSISTANT_SECRET`,
 * `DEV_USER_APP_ID`, `DEV_USER_APP_SECRET`, `DEV_ROGUE_ID`, `DEV_ROGUE_SECRET`; each falls back to
 * {@link DELEGATION_DEV_CLIENT_DEFAULTS}. Empty values count as unset.
 * @throws Error when two of them share a client id.
 */
export function delegationDevClientsFromEnv(env: Record<string, string | undefined> = process.env): DelegationDevClients {
  const prefix = { assistant: 'DEV_ASSISTANT', user: 'DEV_USER_APP', rogue: 'DEV_ROGUE' } as const;
  const pick = (role: keyof typeof prefix): DevClient => {
    const d = DELEGATION_DEV_CLIENT_DEFAULTS[role];
    const secret = env[`${prefix[role]}_SECRET`];
    return {
      clientId: env[`${prefix[role]}_ID`] || d.clientId,
      clientSecret: secret || d.clientSecret,
      scopes: [...d.scopes],
      secretFrom: secret ? `${prefix[role]}_SECRET` : undefined,
    };
  };
  const clients: DelegationDevClients = { assistant: pick('assistant'), user: pick('user'), rogue: pick('rogue') };
  const seen = new Map<string, string>();
  for (const role of Object.keys(prefix) as Array<keyof typeof prefix>) {
    const other = seen.get(clients[role].clientId);
    if (other) throw new Error(`${other}_ID and ${prefix[role]}_ID must differ (both are ${JSON.stringify(clients[role].clientId)})`);
    seen.set(clients[role].clientId, prefix[role]);
  }
  return clients;
}
