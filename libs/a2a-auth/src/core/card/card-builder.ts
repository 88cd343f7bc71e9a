import type { AgentSkillOptions } from '../route-policy';
import type { AgentExtensionOptions, ResolvedOptions } from '../options';
import type { AgentCardJson, AgentExtensionJson, AgentSkillJson, SecurityRequirementJson, SecuritySchemeJson } from './agent-card.types';

/** A skill found on a handler, with the auth metadata the guard enforces for it. */
export interface DiscoveredSkill {
  /** The `@AgentSkill` options. */
  skill: AgentSkillOptions;
  /** Required scopes (class + method `@RequireScopes`). */
  scopes: readonly string[];
  /** Whether the handler is `@Public()`. */
  isPublic: boolean;
  /** Where it was declared, `Class.method`, for boot messages. */
  source: string;
}

/** Card inputs taken from the module options. */
export type CardBuildOptions = Pick<ResolvedOptions, 'card' | 'scopes' | 'tokenUrl' | 'oauth2MetadataUrl' | 'mtls'>;

const DEFAULT_MODES = ['text/plain', 'application/json'];

function resolveUrl(base: string, url: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(url)) return url;
  return base.replace(/\/$/, '') + (url.startsWith('/') ? url : `/${url}`);
}

/**
 * Builds the A2A v1.0 Agent Card (ProtoJSON wire form, DESIGN §4) from options and discovered skills.
 * Pure: same inputs, same card. Empty arrays, maps and strings are omitted, as ProtoJSON does, so the card
 * round-trips unchanged through the official SDK's `AgentCard.fromJSON`/`toJSON`.
 *
 * Security:
 * - `securitySchemes.<name>.oauth2SecurityScheme` with the `clientCredentials` flow (`tokenUrl`, the scope catalog)
 *   and `oauth2MetadataUrl` (RFC 8414); optional `bearer` (HTTP), `oidc` and `mtls` schemes.
 * - Card `securityRequirements`: a valid token, one alternative (OR) per token scheme (`oauth2`, then `bearer`
 *   and `oidc` when advertised), each together (AND) with `mtls` when advertised; no scopes at card level.
 * - Each skill's `securityRequirements`: the same alternatives, listing its `@RequireScopes` scopes (class + method);
 *   a `@Public()` skill gets `[{}]` (one requirement with no schemes = no authentication, as in OpenAPI), which
 *   survives the SDK round-trip, unlike `[]`.
 * - `extendedOnly` skills appear only when `extended` is true.
 *
 * @param extended include `extendedOnly` skills (the authenticated extended card).
 * @throws Error when `card` is not configured.
 */
export function buildAgentCard(o: CardBuildOptions, skills: readonly DiscoveredSkill[], extended = false): AgentCardJson {
  const c = o.card;
  if (!c) throw new Error('nestjs-a2a-auth: card options are not configured');
  const scheme = c.securitySchemeName;
  const mtls = o.mtls?.advertise ? 'mtls' : undefined;

  // OR across the token schemes the card offers (all yield the same JWT), each AND the mTLS certificate when advertised.
  const tokenSchemes = [scheme, ...(c.advertiseBearerScheme ? ['bearer'] : []), ...(c.openIdConnectUrl ? ['oidc'] : [])];
  const requirements = (scopes: readonly string[]): SecurityRequirementJson[] =>
    tokenSchemes.map((name) => {
      const schemes: Record<string, { list?: string[] }> = { [name]: scopes.length ? { list: [...scopes] } : {} };
      if (mtls) schemes[mtls] = {};
      return { schemes };
    });

  const securitySchemes: Record<string, SecuritySchemeJson> = {};
  const scopes = Object.keys(o.scopes).length ? { ...o.scopes } : undefined;
  securitySchemes[scheme] = {
    oauth2SecurityScheme: {
      description: 'OAuth 2.0 client credentials grant (RFC 6749 §4.4); send the access token as a Bearer token (RFC 6750)',
      flows: { clientCredentials: { tokenUrl: o.tokenUrl ?? '', ...(scopes ? { scopes } : {}) } },
      oauth2MetadataUrl: o.oauth2MetadataUrl,
    },
  };
  if (c.advertiseBearerScheme) securitySchemes.bearer = { httpAuthSecurityScheme: { scheme: 'Bearer', bearerFormat: 'JWT' } };
  if (c.openIdConnectUrl) securitySchemes.oidc = { openIdConnectSecurityScheme: { openIdConnectUrl: c.openIdConnectUrl } };
  if (mtls) securitySchemes[mtls] = { mtlsSecurityScheme: { description: o.mtls!.description } };

  const inModes = c.defaultInputModes ?? DEFAULT_MODES;
  const outModes = c.defaultOutputModes ?? DEFAULT_MODES;
  const skillJson = skills
    .filter((s) => extended || !s.skill.extendedOnly)
    .map((s): AgentSkillJson => {
      const k = s.skill;
      const j = { id: k.id, ...(k.name ? { name: k.name } : {}), ...(k.description ? { description: k.description } : {}) } as AgentSkillJson;
      if (k.tags?.length) j.tags = [...k.tags];
      if (k.examples?.length) j.examples = [...k.examples];
      if (k.inputModes?.length) j.inputModes = [...k.inputModes];
      if (k.outputModes?.length) j.outputModes = [...k.outputModes];
      j.securityRequirements = s.isPublic ? [{}] : requirements(s.scopes);
      return j;
    });

  const interfaces = c.interfaces.map((i) => ({
    url: resolveUrl(c.url, i.url),
    protocolBinding: i.protocolBinding,
    protocolVersion: i.protocolVersion ?? '1.0',
  }));

  // Key order follows the SDK's toJSON so the JSON text is identical too.
  const card = {
    name: c.name,
    ...(c.description ? { description: c.description } : {}),
    // ProtoJSON omits an empty repeated field, so a card without interfaces round-trips through the SDK unchanged.
    ...(interfaces.length ? { supportedInterfaces: interfaces } : {}),
    ...(c.provider
      ? { provider: { ...(c.provider.url ? { url: c.provider.url } : {}), ...(c.provider.organization ? { organization: c.provider.organization } : {}) } }
      : {}),
    ...(c.version ? { version: c.version } : {}),
    ...(c.documentationUrl ? { documentationUrl: c.documentationUrl } : {}),
    capabilities: {
      streaming: c.capabilities?.streaming ?? false,
      pushNotifications: c.capabilities?.pushNotifications ?? false,
      extendedAgentCard: c.extendedCard ?? false,
      ...(c.capabilities?.extensions?.length ? { extensions: c.capabilities.extensions.map(extensionJson) } : {}),
    },
    securitySchemes,
    securityRequirements: requirements([]),
    ...(inModes.length ? { defaultInputModes: [...inModes] } : {}),
    ...(outModes.length ? { defaultOutputModes: [...outModes] } : {}),
    ...(skillJson.length ? { skills: skillJson } : {}),
    ...(c.iconUrl ? { iconUrl: c.iconUrl } : {}),
  } as AgentCardJson;
  return card;
}

/** The A2A v0.3 card (the shape most articles show). Never mixes v1.0 fields in. */
export interface AgentCardV03Json {
  protocolVersion: string;
  name: string;
  description: string;
  url: string;
  /** Absent when the card lists no interface. */
  preferredTransport?: string;
  additionalInterfaces?: Array<{ url: string; transport: string }>;
  provider?: { organization: string; url: string };
  iconUrl?: string;
  version: string;
  documentationUrl?: string;
  capabilities: { streaming: boolean; pushNotifications: boolean; extensions?: AgentExtensionJson[] };
  securitySchemes: Record<string, Record<string, unknown>>;
  security: Array<Record<string, string[]>>;
  defaultInputModes: string[];
  defaultOutputModes: string[];
  skills: Array<{
    id: string;
    name: string;
    description: string;
    tags: string[];
    examples?: string[];
    inputModes?: string[];
    outputModes?: string[];
    security?: Array<Record<string, string[]>>;
  }>;
  supportsAuthenticatedExtendedCard: boolean;
  signatures?: Array<{ protected: string; signature: string; header?: Record<string, unknown> }>;
}

function v03Requirements(reqs: SecurityRequirementJson[] | undefined): Array<Record<string, string[]>> {
  return (reqs ?? []).map((r) => Object.fromEntries(Object.entries(r.schemes ?? {}).map(([k, v]) => [k, [...(v.list ?? [])]])));
}

/**
 * Derives the A2A v0.3 view (`url`, `protocolVersion: "0.3.0"`, `preferredTransport`, OpenAPI-style
 * `securitySchemes.<name>.type`, `security`, `skills[].security`, `supportsAuthenticatedExtendedCard`)
 * from a v1.0 card, without `signatures` (sign the view separately).
 * @param agentUrl the agent's base URL, used as the v0.3 `url` when the card lists no interface.
 */
export function toV03Card(card: AgentCardJson, agentUrl?: string): AgentCardV03Json {
  const [primary, ...rest] = card.supportedInterfaces?.length ? card.supportedInterfaces : [undefined];
  const schemes: Record<string, Record<string, unknown>> = {};
  for (const [name, s] of Object.entries(card.securitySchemes ?? {})) {
    if ('oauth2SecurityScheme' in s) {
      const o = s.oauth2SecurityScheme;
      schemes[name] = {
        type: 'oauth2',
        ...(o.description ? { description: o.description } : {}),
        flows: { clientCredentials: { tokenUrl: o.flows.clientCredentials.tokenUrl, scopes: { ...(o.flows.clientCredentials.scopes ?? {}) } } },
        ...(o.oauth2MetadataUrl ? { oauth2MetadataUrl: o.oauth2MetadataUrl } : {}),
      };
    } else if ('httpAuthSecurityScheme' in s) {
      schemes[name] = {
        type: 'http',
        scheme: s.httpAuthSecurityScheme.scheme.toLowerCase(),
        ...(s.httpAuthSecurityScheme.bearerFormat ? { bearerFormat: s.httpAuthSecurityScheme.bearerFormat } : {}),
      };
    } else if ('openIdConnectSecurityScheme' in s) {
      schemes[name] = { type: 'openIdConnect', openIdConnectUrl: s.openIdConnectSecurityScheme.openIdConnectUrl };
    } else if ('mtlsSecurityScheme' in s) {
      schemes[name] = { type: 'mutualTLS', ...(s.mtlsSecurityScheme.description ? { description: s.mtlsSecurityScheme.description } : {}) };
    } else if ('apiKeySecurityScheme' in s) {
      schemes[name] = { type: 'apiKey', in: s.apiKeySecurityScheme.location, name: s.apiKeySecurityScheme.name };
    }
  }
  return {
    protocolVersion: '0.3.0',
    name: card.name,
    description: card.description,
    // v0.3 requires `url`: without any interface, the agent's base URL stands in and no transport is named.
    url: primary?.url ?? agentUrl ?? '',
    ...(primary ? { preferredTransport: primary.protocolBinding } : {}),
    ...(primary && rest.length ? { additionalInterfaces: [primary, ...rest].map((i) => ({ url: i!.url, transport: i!.protocolBinding })) } : {}),
    ...(card.provider ? { provider: { organization: card.provider.organization, url: card.provider.url } } : {}),
    ...(card.iconUrl ? { iconUrl: card.iconUrl } : {}),
    version: card.version,
    ...(card.documentationUrl ? { documentationUrl: card.documentationUrl } : {}),
    capabilities: {
      streaming: card.capabilities.streaming ?? false,
      pushNotifications: card.capabilities.pushNotifications ?? false,
      ...(card.capabilities.extensions?.length ? { extensions: card.capabilities.extensions.map((e) => ({ ...e })) } : {}),
    },
    securitySchemes: schemes,
    security: v03Requirements(card.securityRequirements),
    defaultInputModes: [...(card.defaultInputModes ?? [])],
    defaultOutputModes: [...(card.defaultOutputModes ?? [])],
    skills: (card.skills ?? []).map((s) => ({
      id: s.id,
      name: s.name,
      description: s.description,
      tags: [...(s.tags ?? [])],
      ...(s.examples ? { examples: [...s.examples] } : {}),
      ...(s.inputModes ? { inputModes: [...s.inputModes] } : {}),
      ...(s.outputModes ? { outputModes: [...s.outputModes] } : {}),
      ...(s.securityRequirements ? { security: v03Requirements(s.securityRequirements) } : {}),
    })),
    supportsAuthenticatedExtendedCard: card.capabilities.extendedAgentCard ?? false,
  };
}

/** An `AgentExtension` in ProtoJSON form: empty and default fields omitted, so it round-trips through the SDK unchanged. */
function extensionJson(e: AgentExtensionOptions): AgentExtensionJson {
  return {
    uri: e.uri,
    ...(e.description ? { description: e.description } : {}),
    ...(e.required ? { required: true } : {}),
    ...(e.params !== undefined ? { params: { ...e.params } } : {}),
  };
}
