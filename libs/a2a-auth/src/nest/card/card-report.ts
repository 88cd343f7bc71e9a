import type { DynamicModule, LoggerService, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { AgentCardJson } from '../../core/card/agent-card.types';
import type { AgentCardV03Json } from '../../core/card/card-builder';
import { AgentCardService } from './card.service';
import { checkAgentCard, checkV03Card } from '../../core/card/card-checker';

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
