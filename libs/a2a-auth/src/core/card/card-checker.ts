import { isDeepStrictEqual } from 'node:util';
import type { AgentCardJson } from './agent-card.types';

/** Keys that exist only in the A2A v1.0 card (top level). */
export const V1_ONLY_KEYS = Object.freeze(['supportedInterfaces', 'securityRequirements']);
/** Keys that exist only in the A2A v0.3 card (top level). */
export const V03_ONLY_KEYS = Object.freeze([
  'url',
  'protocolVersion',
  'preferredTransport',
  'additionalInterfaces',
  'security',
  'supportsAuthenticatedExtendedCard',
]);

/** First path where two JSON values differ, e.g. `skills[0].securityRequirements`, or `undefined` when equal. */
export function firstDifference(a: unknown, b: unknown, path = ''): string | undefined {
  if (isDeepStrictEqual(a, b)) return undefined;
  if (a && b && typeof a === 'object' && typeof b === 'object' && Array.isArray(a) === Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) {
      const p = Array.isArray(a) ? `${path}[${k}]` : path ? `${path}.${k}` : k;
      const d = firstDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], p);
      if (d !== undefined) return d;
    }
  }
  return path || '(root)';
}

type SdkCard = { fromJSON(o: unknown): unknown; toJSON(m: unknown): unknown };

function loadSdkAgentCard(): SdkCard | undefined {
  try {
    // Optional peer dependency: the round-trip check runs only when the official SDK is installed.
    return (require('@a2a-js/sdk') as { AgentCard: SdkCard }).AgentCard;
  } catch {
    return undefined;
  }
}

/**
 * Consistency checks of one v1.0 wire card (pure; used by `--check` and the tests):
 * - it comes back unchanged through the official SDK's `AgentCard.fromJSON` → `toJSON` (when the SDK is installed);
 * - an OAuth2 scheme with a `clientCredentials.tokenUrl` (absolute URL) exists;
 * - every scheme a requirement names exists, and every OAuth2 scope a requirement lists is in that scheme's catalog;
 * - every skill has `securityRequirements`, and a skill that is not public (`[{}]`) lists at least one scope;
 * - skill ids are unique; no v0.3-only key is present.
 * @param label names the card in messages, e.g. `"v1.0 card"`.
 * @param o.sdkOptional do not report a missing SDK as a problem (the round-trip check is then skipped). Default false.
 * @returns problems (empty when consistent).
 */
export function checkAgentCard(card: AgentCardJson, label = 'card', o: { sdkOptional?: boolean } = {}): string[] {
  const problems: string[] = [];
  if (typeof card !== 'object' || card === null || Array.isArray(card)) return [`${label}: not a JSON object`];
  const sdk = loadSdkAgentCard();
  if (sdk) {
    let back: unknown;
    try {
      back = sdk.toJSON(sdk.fromJSON(card));
    } catch (e) {
      problems.push(`${label}: the official SDK cannot read it: ${(e as Error).message}`);
    }
    if (back !== undefined) {
      const d = firstDifference(back, card);
      if (d !== undefined) problems.push(`${label}: SDK round-trip (AgentCard.fromJSON → toJSON) changes ${d}`);
    }
  } else if (!o.sdkOptional) {
    problems.push(`${label}: @a2a-js/sdk is not installed; the SDK round-trip check could not run`);
  }
  for (const k of V03_ONLY_KEYS) if (k in card) problems.push(`${label}: v0.3 field ${JSON.stringify(k)} in a v1.0 card`);

  const schemes = card.securitySchemes ?? {};
  const oauth = Object.entries(schemes).filter(([, s]) => 'oauth2SecurityScheme' in s) as Array<
    [string, Extract<(typeof schemes)[string], { oauth2SecurityScheme: unknown }>]
  >;
  if (oauth.length === 0) problems.push(`${label}: no OAuth2 security scheme`);
  for (const [name, s] of oauth) {
    const tokenUrl = s.oauth2SecurityScheme.flows?.clientCredentials?.tokenUrl;
    if (!tokenUrl) problems.push(`${label}: securitySchemes.${name} has no clientCredentials.tokenUrl`);
    else if (!/^https?:\/\//.test(tokenUrl))
      problems.push(`${label}: securitySchemes.${name} tokenUrl ${JSON.stringify(tokenUrl)} is not an absolute http(s) URL`);
  }
  const catalog = new Map(oauth.map(([n, s]) => [n, s.oauth2SecurityScheme.flows?.clientCredentials?.scopes ?? {}]));

  const checkReqs = (reqs: AgentCardJson['securityRequirements'], where: string) => {
    for (const r of reqs ?? []) {
      for (const [name, l] of Object.entries(r.schemes ?? {})) {
        if (!(name in schemes)) problems.push(`${label}: ${where} names security scheme ${JSON.stringify(name)}, which securitySchemes does not define`);
        const scopes = catalog.get(name);
        if (!scopes) continue;
        for (const sc of l.list ?? []) {
          if (!Object.prototype.hasOwnProperty.call(scopes, sc))
            problems.push(`${label}: ${where} requires scope ${JSON.stringify(sc)}, missing from securitySchemes.${name} scopes`);
        }
      }
    }
  };
  checkReqs(card.securityRequirements, 'securityRequirements');
  if (!card.securityRequirements?.length) problems.push(`${label}: no card-level securityRequirements`);

  const ids = new Set<string>();
  for (const sk of card.skills ?? []) {
    if (ids.has(sk.id)) problems.push(`${label}: duplicate skill id ${JSON.stringify(sk.id)}`);
    ids.add(sk.id);
    const where = `skill ${JSON.stringify(sk.id)}`;
    if (!sk.securityRequirements?.length) {
      problems.push(`${label}: ${where} has no securityRequirements`);
      continue;
    }
    checkReqs(sk.securityRequirements, where);
    const isPublic = sk.securityRequirements.some((r) => Object.keys(r.schemes ?? {}).length === 0);
    const scoped = sk.securityRequirements.some((r) => Object.values(r.schemes ?? {}).some((l) => (l.list ?? []).length > 0));
    if (!isPublic && !scoped) problems.push(`${label}: ${where} requires no scope: add @RequireScopes(...) or mark it @Public()`);
  }
  return problems;
}

/** Checks that a v0.3 view carries no v1.0-only field. */
export function checkV03Card(card: object, label = 'v0.3 card'): string[] {
  const problems: string[] = [];
  for (const k of V1_ONLY_KEYS) if (k in card) problems.push(`${label}: v1.0 field ${JSON.stringify(k)} in a v0.3 card`);
  const c = card as { capabilities?: object; skills?: Array<Record<string, unknown>>; securitySchemes?: Record<string, Record<string, unknown>> };
  if (c.capabilities && 'extendedAgentCard' in c.capabilities) problems.push(`${label}: v1.0 field "capabilities.extendedAgentCard" in a v0.3 card`);
  for (const s of c.skills ?? []) if ('securityRequirements' in s) problems.push(`${label}: v1.0 field "skills[].securityRequirements" in a v0.3 card`);
  for (const [n, s] of Object.entries(c.securitySchemes ?? {})) if (!('type' in s)) problems.push(`${label}: securitySchemes.${n} has no v0.3 "type"`);
  return problems;
}
