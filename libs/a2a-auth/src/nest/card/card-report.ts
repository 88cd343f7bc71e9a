import { isDeepStrictEqual } from 'node:util';
import type { DynamicModule, LoggerService, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { AgentCardJson } from '../../core/card/agent-card.types';
import type { AgentCardV03Json } from '../../core/card/card-builder';
import { AgentCardService } from './card.service';

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

/** The cards an app serves, built without listening on a port, and the consistency problems found. */
export interface CardReport {
  /** The public v1.0 card (wire JSON), when the app booted and has a card. */
  v1?: AgentCardJson;
  /** The v0.3 view of the public card. */
  v03?: AgentCardV03Json;
  /** The authenticated extended card (v1.0), when configured. */
  v1Extended?: AgentCardJson;
  /** The v0.3 view of the extended card. */
  v03Extended?: AgentCardV03Json;
  /** Human-readable problems; empty when the cards are consistent. */
  problems: string[];
  /** Warnings and errors the app logged while booting (one line each). */
  bootLog: string[];
}

/** Keeps warnings and errors of the boot (the app's own logs stay out of the CLI's stdout). */
class BootLogger implements LoggerService {
  lines: string[] = [];
  private push(level: string, message: unknown, ...rest: unknown[]): void {
    const ctx = rest.length && typeof rest[rest.length - 1] === 'string' ? `[${rest[rest.length - 1] as string}] ` : '';
    this.lines.push(`${level} ${ctx}${message instanceof Error ? message.message : typeof message === 'string' ? message : JSON.stringify(message)}`);
  }
  log(m: unknown, ...r: unknown[]): void {
    if (r[r.length - 1] === 'A2AAuth') this.push('log', m, ...r); // the library's boot notes (e.g. unused scopes)
  }
  debug(): void {}
  verbose(): void {}
  warn(m: unknown, ...r: unknown[]): void {
    this.push('warn', m, ...r);
  }
  error(m: unknown, ...r: unknown[]): void {
    this.push('error', m, ...r);
  }
  fatal(m: unknown, ...r: unknown[]): void {
    this.push('fatal', m, ...r);
  }
}

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
 * @returns problems (empty when consistent).
 */
export function checkAgentCard(card: AgentCardJson, label = 'card'): string[] {
  const problems: string[] = [];
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
  } else {
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

/**
 * Boots an app module as a Nest application context (no HTTP server, no port), reads the cards that
 * {@link AgentCardService} built, and checks them ({@link checkAgentCard}, {@link checkV03Card}).
 * A boot failure (e.g. an unknown scope or a duplicate skill id) is reported as a problem, not thrown.
 * Unknown-scope warnings logged under `unknownScopePolicy: 'warn'` are problems too.
 *
 * @param rootModule the app's root module (class or dynamic module).
 */
export async function inspectAgentCards(rootModule: Type<unknown> | DynamicModule): Promise<CardReport> {
  const logger = new BootLogger();
  const report: CardReport = { problems: [], bootLog: logger.lines };
  let app: Awaited<ReturnType<typeof NestFactory.createApplicationContext>> | undefined;
  try {
    app = await NestFactory.createApplicationContext(rootModule, { logger, abortOnError: false });
    const cards = app.get(AgentCardService, { strict: false });
    const v1 = cards.document('v1');
    if (!v1) {
      report.problems.push('the app has no card: configure `card` in A2AAuthModule.forRoot');
      return report;
    }
    report.v1 = v1.json as AgentCardJson;
    report.v03 = cards.document('v03')!.json as AgentCardV03Json;
    report.v1Extended = cards.document('v1-extended')?.json as AgentCardJson | undefined;
    report.v03Extended = cards.document('v03-extended')?.json as AgentCardV03Json | undefined;
    report.problems.push(...checkAgentCard(report.v1, 'v1.0 card'), ...checkV03Card(report.v03, 'v0.3 card'));
    if (report.v1Extended) {
      report.problems.push(...checkAgentCard(report.v1Extended, 'v1.0 extended card'), ...checkV03Card(report.v03Extended!, 'v0.3 extended card'));
      if (report.v1.capabilities.extendedAgentCard !== true)
        report.problems.push('v1.0 card: an extended card is served but capabilities.extendedAgentCard is not true');
    }
    for (const l of logger.lines) if (/missing from the `scopes` catalog/.test(l)) report.problems.push(`boot: ${l.replace(/^\w+ (\[[^\]]*\] )?/, '')}`);
  } catch (e) {
    report.problems.push(`boot failed: ${(e as Error)?.message ?? String(e)}`);
  } finally {
    await app?.close().catch(() => undefined);
  }
  return report;
}

/** Where {@link runCardCli} writes: stdout for the card, stderr for messages. */
export interface CardCliIo {
  out(text: string): void;
  err(text: string): void;
}

const USAGE = 'usage: card [--version 1.0|0.3] [--extended] [--check]';

/**
 * The `npm run card` command: prints an app's Agent Card as JSON (2-space indent) without listening on a port.
 * - `--version 1.0|0.3` (default `1.0`): the wire card or its v0.3 view;
 * - `--extended`: the authenticated extended card;
 * - `--check`: prints nothing on stdout; lists every problem found by {@link inspectAgentCards} on stderr.
 *
 * @param argv the arguments after the script name.
 * @returns the exit code: 0 ok, 1 a problem (with `--check`) or no such card / a boot failure, 2 bad arguments.
 */
export async function runCardCli(
  rootModule: Type<unknown> | DynamicModule,
  argv: readonly string[],
  io: CardCliIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) },
): Promise<number> {
  let version = '1.0';
  let extended = false;
  let check = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--extended') extended = true;
    else if (a === '--check') check = true;
    else if (a === '--version' || a.startsWith('--version=')) {
      version = a.includes('=') ? a.slice(a.indexOf('=') + 1) : (argv[++i] ?? '');
      if (version !== '1.0' && version !== '0.3') {
        io.err(`--version must be 1.0 or 0.3\n${USAGE}\n`);
        return 2;
      }
    } else if (a === '--help' || a === '-h') {
      io.out(`${USAGE}\n`);
      return 0;
    } else {
      io.err(`unknown argument ${JSON.stringify(a)}\n${USAGE}\n`);
      return 2;
    }
  }
  const r = await inspectAgentCards(rootModule);
  if (check) {
    for (const p of r.problems) io.err(`problem: ${p}\n`);
    if (r.problems.length) {
      io.err(`card check failed: ${r.problems.length} problem(s)\n`);
      return 1;
    }
    for (const l of r.bootLog) if (l.startsWith('log ')) io.err(`note: ${l.slice(4)}\n`);
    io.err(`card check passed: ${(r.v1?.skills ?? []).length} public skill(s), ${(r.v1Extended?.skills ?? []).length} in the extended card\n`);
    return 0;
  }
  const card = extended ? (version === '0.3' ? r.v03Extended : r.v1Extended) : version === '0.3' ? r.v03 : r.v1;
  if (!card) {
    const boot = r.problems.find((p) => p.startsWith('boot failed') || p.startsWith('the app has no card'));
    io.err(`${boot ?? (extended ? 'no extended card: set card.extendedCard' : 'no card')}\n`);
    return 1;
  }
  io.out(`${JSON.stringify(card, null, 2)}\n`);
  return 0;
}
