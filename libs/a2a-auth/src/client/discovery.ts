import { cardVerifier, type AgentCardTrust, type VerifiedCardSignature } from './card-trust';
import { bearerDestinationCheck, httpOrigin, type BearerDestinationOptions } from './destinations';
import { AgentCardDiscoveryError, ClientCredentialsError } from './errors';
import { ClientCredentialsTokenProvider, isLoopback, type ClientCredentialsOptions } from './token-provider';

/** The well-known Agent Card path (A2A v1.0 §8.2), relative to the agent's base URL. */
export const AGENT_CARD_WELL_KNOWN_PATH = '.well-known/agent-card.json';

/**
 * The Agent Card URL for an agent base URL.
 *
 * The base URL is treated as a directory: `https://h/agents/expense` and `https://h/agents/expense/` both give
 * `https://h/agents/expense/.well-known/agent-card.json`. (The official SDK's resolver uses relative URL resolution,
 * where a base without a trailing slash loses its last segment; {@link agentBaseUrl} gives the form to pass to it.)
 * A URL that already ends in `.json` is taken as the card URL itself.
 * @throws AgentCardDiscoveryError `card_unavailable` for a URL that is not absolute http(s).
 */
export function agentCardUrl(agentUrl: string): string {
  const u = parseHttpUrl(agentUrl);
  if (/\.json$/i.test(u.pathname)) return u.href;
  return new URL(AGENT_CARD_WELL_KNOWN_PATH, agentBaseUrl(u.href)).href;
}

/** The agent base URL with exactly one trailing slash, without query or fragment (safe for the SDK's `createFromUrl`). */
export function agentBaseUrl(agentUrl: string): string {
  const u = parseHttpUrl(agentUrl);
  u.search = '';
  u.hash = '';
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u.href;
}

function parseHttpUrl(s: string): URL {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new AgentCardDiscoveryError('card_unavailable', `agent URL is not absolute: ${JSON.stringify(String(s).slice(0, 200))}`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new AgentCardDiscoveryError('card_unavailable', `agent URL must be http(s), got ${u.protocol}`);
  if (u.username || u.password) throw new AgentCardDiscoveryError('card_unavailable', 'agent URL must not contain credentials');
  return u;
}

/**
 * Options of {@link discoverAgentAuth}.
 *
 * Bearer destinations ({@link BearerDestinationOptions}): every interface the card lists must be allowed to receive the
 * token, or discovery fails with `untrusted_interface`. Allowed by default: the card URL's own origin only, and never
 * plain `http:` to a non-loopback host. `allowedOrigins` and `trustBearerUrl` allow more.
 */
export interface DiscoveryOptions extends BearerDestinationOptions {
  /** Name of the `securitySchemes` entry to use. Default: the first OAuth 2.0 scheme with a client-credentials flow. */
  schemeName?: string;
  /**
   * Decides whether the card's `tokenUrl` may receive this client's secret. A card is data from the network: a
   * hostile or compromised agent could name a token endpoint that collects secrets, so pin it in production
   * (e.g. `(u) => u === 'https://auth.example.com/oauth/token'`).
   * Default: `https:` URLs, and `http:` only on loopback hosts.
   */
  trustTokenUrl?: (tokenUrl: string) => boolean;
  /** Card fetch deadline, milliseconds. Default 10,000. */
  timeoutMs?: number;
  /** The `fetch` to use. Default the global `fetch`. */
  fetch?: typeof fetch;
  /** Value of the `A2A-Version` request header. Default `'1.0'`. */
  a2aVersion?: string;
  /**
   * Require a signed card (A2A v1.0 §8.4) and verify it against these keys, which you control, before anything on the
   * card (token URL, interfaces, scopes) is used. The card's `jku` is never a trust root. Default none: the card is
   * not checked (as served over TLS).
   */
  cardTrust?: AgentCardTrust;
}

/** One interface of the card (A2A v1.0 `AgentInterface`; for a v0.3 card, `url` / `additionalInterfaces`). */
export interface DiscoveredInterface {
  /** The absolute URL (checked: it may receive the bearer token). */
  url: string;
  /** `JSONRPC`, `HTTP+JSON`, `GRPC`… (v0.3: `transport` / `preferredTransport`). */
  protocolBinding?: string;
  /** `protocolVersion`, when given. */
  protocolVersion?: string;
}

/** What a calling agent learns from a target agent's card. */
export interface DiscoveredAgentAuth {
  /** The card URL that was fetched. */
  cardUrl: string;
  /** The agent base URL with a trailing slash (for the SDK's `ClientFactory.createFromUrl`). */
  agentUrl: string;
  /** The card JSON as served (verified first when `cardTrust` was given). */
  card: Record<string, unknown>;
  /** What the card was signed with; set only when `cardTrust` was given (and the signature verified). */
  signature?: VerifiedCardSignature;
  /** The card's interfaces, each checked against the bearer destination rule ({@link DiscoveryOptions}). */
  interfaces: readonly DiscoveredInterface[];
  /** `'1.0'` (ProtoJSON `oauth2SecurityScheme` shape) or `'0.3'` (OpenAPI `type: oauth2` shape). */
  cardVersion: '1.0' | '0.3';
  /** The `securitySchemes` entry used. */
  schemeName: string;
  /** `flows.clientCredentials.tokenUrl` (absolute). */
  tokenUrl: string;
  /** The flow's scope catalog (scope → description). */
  scopeCatalog: Readonly<Record<string, string>>;
  /** `oauth2MetadataUrl` (RFC 8414), when advertised. */
  oauth2MetadataUrl?: string;
  /** Ids of the skills on the card. */
  skillIds: readonly string[];
  /** Scopes the card-level security requirement names for this scheme (usually none). */
  agentScopes: readonly string[];
  /**
   * Scopes a skill requires for this scheme: the first of its `securityRequirements` that names the scheme (they
   * are alternatives), plus the card-level ones. A public skill (`[{}]`) gives the card-level scopes only.
   * @throws AgentCardDiscoveryError `unknown_skill` when the card does not list the skill.
   */
  scopesForSkill(skillId: string): string[];
  /** A token provider for this agent's token endpoint with these client credentials (other options as given). */
  tokenProvider(credentials: Omit<ClientCredentialsOptions, 'tokenUrl'>): ClientCredentialsTokenProvider;
  /** A token provider requesting exactly the scopes of `skillId` ({@link scopesForSkill}). */
  tokenProviderForSkill(skillId: string, credentials: Omit<ClientCredentialsOptions, 'tokenUrl' | 'scopes'>): ClientCredentialsTokenProvider;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Fetches an agent's card (`<agentUrl>/.well-known/agent-card.json`, see {@link agentCardUrl}) and reads its OAuth 2.0
 * client-credentials flow (RFC 6749 §4.4) and per-skill scopes.
 *
 * Accepts the A2A v1.0 wire shape (`securitySchemes.<name>.oauth2SecurityScheme.flows.clientCredentials.tokenUrl`,
 * `skills[].securityRequirements[].schemes.<name>.list`) and the v0.3 shape (`securitySchemes.<name>.type = 'oauth2'`,
 * `skills[].security[].<name>`). A relative `tokenUrl` is resolved against the card URL.
 *
 * With `cardTrust`, the signature is verified first (see `verifyAgentCardSignature`); nothing is read from a
 * card that does not verify.
 *
 * @throws AgentCardDiscoveryError (`card_unavailable`, `invalid_card`, `no_client_credentials`, `untrusted_token_url`,
 *   `untrusted_interface`; with `cardTrust`: `unsigned_card`, `invalid_card_signature`, `unknown_card_key`,
 *   `card_signature_mismatch`, `card_keys_unavailable`).
 * @throws ClientCredentialsError for a malformed `allowedOrigins` entry or an unusable `cardTrust`.
 */
export async function discoverAgentAuth(agentUrl: string, o: DiscoveryOptions = {}): Promise<DiscoveredAgentAuth> {
  const cardUrl = agentCardUrl(agentUrl);
  const base = /\.json$/i.test(new URL(agentUrl).pathname) ? undefined : agentBaseUrl(agentUrl);
  const timeoutMs = o.timeoutMs ?? 10_000;
  const { cardTrust, ...rest } = o;
  const verify = cardTrust ? cardVerifier(cardTrust) : undefined;
  let card: unknown;
  try {
    const res = await (o.fetch ?? fetch)(cardUrl, {
      headers: { accept: 'application/json', 'A2A-Version': o.a2aVersion ?? '1.0' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      throw new AgentCardDiscoveryError('card_unavailable', `agent card ${cardUrl}: HTTP ${res.status}`);
    }
    const text = await res.text();
    if (text.length > 1024 * 1024) throw new AgentCardDiscoveryError('invalid_card', `agent card ${cardUrl} is larger than 1 MiB`);
    card = JSON.parse(text);
  } catch (e) {
    if (e instanceof AgentCardDiscoveryError) throw e;
    const name = (e as Error)?.name;
    if (name === 'SyntaxError') throw new AgentCardDiscoveryError('invalid_card', `agent card ${cardUrl} is not JSON`);
    if (name === 'TimeoutError' || name === 'AbortError')
      throw new AgentCardDiscoveryError('card_unavailable', `agent card ${cardUrl}: no answer within ${timeoutMs} ms`);
    throw new AgentCardDiscoveryError('card_unavailable', `agent card ${cardUrl}: ${(e as Error)?.message ?? 'fetch failed'}`);
  }
  if (!isObj(card)) throw new AgentCardDiscoveryError('invalid_card', `agent card ${cardUrl} is not a JSON object`);
  // Verify before reading: a tampered card must not get as far as its tokenUrl or interfaces.
  const signature = verify ? await verify(card, cardUrl) : undefined;
  const auth = readAgentAuth(card, cardUrl, base, rest);
  return signature ? { ...auth, signature } : auth;
}

/**
 * The pure part of {@link discoverAgentAuth}: reads the auth facts from a card JSON already in hand.
 * It checks no signature: for a signed card, call `verifyAgentCardSignature` first.
 * @param cardUrl where the card came from (relative `tokenUrl`s resolve against it; its origin is the one that may
 *   receive the bearer token by default).
 * @throws AgentCardDiscoveryError
 * @throws ClientCredentialsError when given `cardTrust` (it cannot verify synchronously) or a malformed `allowedOrigins` entry.
 */
export function readAgentAuth(
  card: Json,
  cardUrl: string,
  agentUrl: string = new URL('../', new URL('.', cardUrl)).href,
  o: Omit<DiscoveryOptions, 'cardTrust'> = {},
): DiscoveredAgentAuth {
  if ((o as DiscoveryOptions).cardTrust) throw new ClientCredentialsError('readAgentAuth does not verify signatures: call verifyAgentCardSignature first');
  const destination = bearerDestinationCheck(
    o,
    [httpOrigin(cardUrl)].filter((x): x is string => x !== undefined),
  );
  const schemes = isObj(card.securitySchemes) ? card.securitySchemes : {};
  const cardVersion: '1.0' | '0.3' = Object.values(schemes).some((s) => isObj(s) && typeof s.type === 'string') || 'security' in card ? '0.3' : '1.0';

  // Find the OAuth 2.0 scheme with a client-credentials flow (either wire shape).
  let schemeName: string | undefined;
  let flow: Json | undefined;
  let metadataUrl: string | undefined;
  for (const [name, raw] of Object.entries(schemes)) {
    if (o.schemeName !== undefined && name !== o.schemeName) continue;
    if (!isObj(raw)) continue;
    const oauth = isObj(raw.oauth2SecurityScheme) ? raw.oauth2SecurityScheme : raw.type === 'oauth2' ? raw : undefined;
    const cc = oauth && isObj(oauth.flows) ? (oauth.flows.clientCredentials ?? oauth.flows.client_credentials) : undefined;
    if (!isObj(cc)) continue;
    schemeName = name;
    flow = cc;
    const m = oauth!.oauth2MetadataUrl ?? oauth!.oauth2_metadata_url;
    metadataUrl = typeof m === 'string' && m ? m : undefined;
    break;
  }
  if (!schemeName || !flow) {
    throw new AgentCardDiscoveryError(
      'no_client_credentials',
      o.schemeName
        ? `agent card has no OAuth 2.0 client-credentials scheme named ${JSON.stringify(o.schemeName)}`
        : 'agent card advertises no OAuth 2.0 client-credentials flow',
    );
  }
  const rawTokenUrl = flow.tokenUrl ?? flow.token_url;
  if (typeof rawTokenUrl !== 'string' || !rawTokenUrl)
    throw new AgentCardDiscoveryError('invalid_card', `security scheme ${JSON.stringify(schemeName)} has no tokenUrl`);
  let tokenUrl: string;
  try {
    tokenUrl = new URL(rawTokenUrl, cardUrl).href;
  } catch {
    throw new AgentCardDiscoveryError('invalid_card', `security scheme ${JSON.stringify(schemeName)} has an invalid tokenUrl`);
  }
  const trust = o.trustTokenUrl ?? defaultTrust;
  if (!trust(tokenUrl))
    throw new AgentCardDiscoveryError('untrusted_token_url', `the card's tokenUrl ${tokenUrl} is not trusted (see DiscoveryOptions.trustTokenUrl)`);

  const interfaces = cardInterfaces(card);
  for (const i of interfaces) {
    const refused = destination(i.url);
    if (refused) {
      throw new AgentCardDiscoveryError(
        'untrusted_interface',
        `the card's interface ${i.url} may not receive the bearer token: ${refused.why}`,
        i.url.slice(0, 2000),
      );
    }
  }

  const catalog: Record<string, string> = {};
  if (isObj(flow.scopes)) for (const [k, v] of Object.entries(flow.scopes)) catalog[k] = typeof v === 'string' ? v : '';

  const name = schemeName;
  const scopesOf = (reqs: unknown): string[] | undefined => {
    if (!Array.isArray(reqs)) return undefined;
    if (reqs.length === 0) return [];
    for (const r of reqs) {
      if (!isObj(r)) continue;
      // v1.0: { schemes: { name: { list: [...] } } }; v0.3: { name: [...] }
      const entry = isObj(r.schemes) ? r.schemes[name] : r[name];
      if (entry === undefined) continue;
      const list = Array.isArray(entry) ? entry : isObj(entry) && Array.isArray(entry.list) ? entry.list : [];
      return list.filter((s): s is string => typeof s === 'string' && s !== '');
    }
    // No alternative names our scheme: a public requirement `{}` among them means no scopes.
    return reqs.some((r) => isObj(r) && Object.keys(isObj(r.schemes) ? r.schemes : r).length === 0) ? [] : undefined;
  };
  const agentScopes = scopesOf(card.securityRequirements ?? card.security) ?? [];
  const skills = Array.isArray(card.skills) ? card.skills.filter(isObj) : [];
  const skillIds = skills.map((s) => s.id).filter((id): id is string => typeof id === 'string');

  const scopesForSkill = (skillId: string): string[] => {
    const s = skills.find((k) => k.id === skillId);
    if (!s) throw new AgentCardDiscoveryError('unknown_skill', `the agent card lists no skill ${JSON.stringify(String(skillId).slice(0, 100))}`);
    const own = scopesOf(s.securityRequirements ?? s.security) ?? [];
    return [...new Set([...agentScopes, ...own])];
  };

  return {
    cardUrl,
    agentUrl,
    card,
    interfaces: Object.freeze(interfaces),
    cardVersion,
    schemeName,
    tokenUrl,
    scopeCatalog: Object.freeze(catalog),
    oauth2MetadataUrl: metadataUrl,
    skillIds: Object.freeze(skillIds),
    agentScopes: Object.freeze(agentScopes),
    scopesForSkill,
    tokenProvider: (c) => new ClientCredentialsTokenProvider({ ...c, tokenUrl }),
    tokenProviderForSkill: (skillId, c) => new ClientCredentialsTokenProvider({ ...c, tokenUrl, scopes: scopesForSkill(skillId) }),
  };
}

/** Every interface URL a client could be sent to: v1.0 `supportedInterfaces`, v0.3 `url` and `additionalInterfaces`. */
function cardInterfaces(card: Json): DiscoveredInterface[] {
  const out: DiscoveredInterface[] = [];
  const add = (raw: unknown, binding: unknown, version: unknown, where: string) => {
    const url = isObj(raw) ? raw.url : raw;
    if (typeof url !== 'string' || !url) throw new AgentCardDiscoveryError('invalid_card', `agent card ${where} has no url`);
    out.push({
      url,
      ...(typeof binding === 'string' ? { protocolBinding: binding } : {}),
      ...(typeof version === 'string' ? { protocolVersion: version } : {}),
    });
  };
  const list = (v: unknown, name: string): unknown[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw new AgentCardDiscoveryError('invalid_card', `agent card ${name} is not an array`);
    return v;
  };
  list(card.supportedInterfaces, 'supportedInterfaces').forEach((i, n) =>
    add(i, isObj(i) ? i.protocolBinding : undefined, isObj(i) ? i.protocolVersion : undefined, `supportedInterfaces[${n}]`),
  );
  if (card.url !== undefined) add(card.url, card.preferredTransport, card.protocolVersion, 'url');
  list(card.additionalInterfaces, 'additionalInterfaces').forEach((i, n) =>
    add(i, isObj(i) ? i.transport : undefined, undefined, `additionalInterfaces[${n}]`),
  );
  return out;
}

function defaultTrust(tokenUrl: string): boolean {
  const u = new URL(tokenUrl);
  return u.protocol === 'https:' || (u.protocol === 'http:' && isLoopback(u.hostname));
}
