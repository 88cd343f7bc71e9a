import 'reflect-metadata';
import { createServer } from 'node:net';
import type { INestApplication, LoggerService, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { enableA2AMediaType } from 'nestjs-a2a-auth';
import { bootstrap, type Platform, type RunningAgent } from '../../expense-agent/src/main';
import { httpUrl, parsePort } from '../../expense-agent/src/config';
import { DevAuthServerRefusedError, startDevAuthServer, type DevAuthServer } from '../../expense-agent/src/dev-auth-server';
import { delegationDevClientsFromEnv, devClientsFromEnv, type DelegationDevClients } from '../../expense-agent/src/dev-clients';
import { AssistantAppModule } from './app.module';
import { ASSISTANT_ENV, DEFAULT_ASSISTANT_PORT, assistantPublicUrl, parseMaxChain, type AssistantSettings } from './config';

/** Listening address of everything the delegation sample starts (loopback only). */
const HOST = '127.0.0.1';
/** How long a SIGTERM/SIGINT shutdown may take before the process exits anyway, milliseconds. */
const SHUTDOWN_TIMEOUT_MS = 10_000;

/** A running Assistant agent. */
export interface RunningAssistant {
  app: INestApplication;
  /** Where it listens, e.g. `http://127.0.0.1:3100`. */
  url: string;
  /** Its settings (the client secret included: never print them). */
  settings: AssistantSettings;
  /** Stops it. */
  close(): Promise<void>;
}

/** Options of {@link bootstrapAssistant}. */
export interface AssistantBootOptions {
  /** Its settings; `publicUrl` must name `port` on 127.0.0.1 unless it runs behind a proxy. */
  settings: AssistantSettings;
  /** Port on 127.0.0.1. */
  port: number;
  /** HTTP platform. Default `'express'`. */
  platform?: Platform;
  /** Nest logger; `false` silences it. Default Nest's console logger. */
  logger?: LoggerService | LogLevel[] | false;
}

/**
 * Starts the Assistant agent on `127.0.0.1:<port>`.
 * @throws Error when the options are invalid (the library's `A2AAuthConfigError` names the option) or the port is taken.
 */
export async function bootstrapAssistant(o: AssistantBootOptions): Promise<RunningAssistant> {
  const adapter = o.platform === 'fastify' ? new FastifyAdapter() : new ExpressAdapter();
  if (adapter instanceof ExpressAdapter) adapter.getInstance().disable('x-powered-by');
  const app = await NestFactory.create(AssistantAppModule.forRoot(o.settings), adapter as never, {
    ...(o.logger !== undefined ? { logger: o.logger } : {}),
    abortOnError: false,
    forceCloseConnections: true,
  });
  try {
    enableA2AMediaType(app);
    await app.listen(o.port, HOST);
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
  let closing: Promise<void> | undefined;
  return { app, url: `http://${HOST}:${o.port}`, settings: o.settings, close: () => (closing ??= app.close()) };
}

/** Asks the OS for a free port on 127.0.0.1 (the audiences must name the real ports before anything listens). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, HOST, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** The delegation sample, running: the dev authorization server, the Expense agent and the Assistant agent. */
export interface DelegationSample {
  /** The embedded dev authorization server (audiences: the Expense agent's and the Assistant agent's). */
  devAuth: DevAuthServer;
  /** The Expense agent, trusting the dev server and accepting tokens the Assistant agent exchanged. */
  expense: RunningAgent;
  /** The Assistant agent. */
  assistant: RunningAssistant;
  /** The delegation clients (assistant, user app, rogue agent) registered at the dev server. */
  clients: DelegationDevClients;
  /** Stops the Assistant agent, the Expense agent, then the dev server. */
  close(): Promise<void>;
}

/** Options of {@link startDelegationSample}. */
export interface DelegationSampleOptions {
  /** HTTP platform of both agents. Default: `PLATFORM` env, else `'express'`. */
  platform?: Platform;
  /**
   * Environment to read instead of `process.env` (hermetic tests): `ASSISTANT_PORT` (default 3100; 0 = a free port),
   * `EXPENSE_PORT` (default 0), `DEV_AUTH_PORT` (default 0), the Expense agent's `A2A_DELEGATION*` variables and the
   * dev client overrides. Default `process.env`.
   */
  env?: Record<string, string | undefined>;
  /** Nest logger of both agents; `false` silences them. Default Nest's console logger. */
  logger?: LoggerService | LogLevel[] | false;
}

/**
 * Starts the whole delegation sample on 127.0.0.1 (DEVELOPMENT ONLY): the dev authorization server with the Expense
 * agent's and the Assistant agent's audiences and clients, the Expense agent trusting it (delegated tokens accepted
 * from the Assistant agent, `A2A_DELEGATION*`), and the Assistant agent calling it on behalf of its callers.
 * @throws DevAuthServerRefusedError when `NODE_ENV=production`; Error for a bad variable or a taken port (everything
 *   started so far is stopped first).
 */
export async function startDelegationSample(o: DelegationSampleOptions = {}): Promise<DelegationSample> {
  const env = o.env ?? process.env;
  if (env.NODE_ENV === 'production') throw new DevAuthServerRefusedError();
  const platform = o.platform ?? ((env.PLATFORM as Platform | undefined) || 'express');
  const assistantPort = env[ASSISTANT_ENV.port] ? parsePort(env[ASSISTANT_ENV.port], ASSISTANT_ENV.port) || (await freePort()) : DEFAULT_ASSISTANT_PORT;
  const expensePort = (env[ASSISTANT_ENV.expensePort] ? parsePort(env[ASSISTANT_ENV.expensePort], ASSISTANT_ENV.expensePort) : 0) || (await freePort());
  const assistantUrl = assistantPublicUrl(env[ASSISTANT_ENV.publicUrl], assistantPort, env.NODE_ENV);
  const expenseUrl = `http://${HOST}:${expensePort}`;
  const maxChainLength = parseMaxChain(env[ASSISTANT_ENV.maxChain]);
  const { submitter, approver } = devClientsFromEnv(env);
  const clients = delegationDevClientsFromEnv(env);

  const devAuth = await startDevAuthServer({
    audience: expenseUrl,
    extraAudiences: [assistantUrl],
    clients: [submitter, approver, clients.assistant, clients.user, clients.rogue],
    port: env.DEV_AUTH_PORT ? parsePort(env.DEV_AUTH_PORT, 'DEV_AUTH_PORT') : 0,
    nodeEnv: env.NODE_ENV,
  });
  let expense: RunningAgent | undefined;
  try {
    expense = await bootstrap({
      platform,
      port: expensePort,
      host: HOST,
      env: {
        NODE_ENV: env.NODE_ENV,
        A2A_ISSUER: devAuth.issuer,
        A2A_AUDIENCE: expenseUrl,
        A2A_JWKS_URI: devAuth.jwksUri,
        A2A_TOKEN_URL: devAuth.tokenUrl,
        A2A_DELEGATION: env.A2A_DELEGATION || 'on',
        A2A_DELEGATION_MAX_CHAIN: env.A2A_DELEGATION_MAX_CHAIN,
        A2A_DELEGATION_TRUSTED_ACTORS: env.A2A_DELEGATION_TRUSTED_ACTORS,
        DEV_ASSISTANT_ID: clients.assistant.clientId,
      },
      logger: o.logger,
      banner: false,
    });
    const assistant = await bootstrapAssistant({
      platform,
      port: assistantPort,
      logger: o.logger,
      settings: {
        publicUrl: assistantUrl,
        issuer: devAuth.issuer,
        jwksUri: devAuth.jwksUri,
        tokenUrl: devAuth.tokenUrl,
        expenseAgentUrl: expense.url,
        expenseAudience: expenseUrl,
        clientId: clients.assistant.clientId,
        clientSecret: clients.assistant.clientSecret,
        maxChainLength,
      },
    });
    const running = expense;
    let closing: Promise<void> | undefined;
    return {
      devAuth,
      expense: running,
      assistant,
      clients,
      close: () =>
        (closing ??= (async () => {
          await assistant.close();
          await running.close();
          await devAuth.close();
        })()),
    };
  } catch (err) {
    await expense?.close().catch(() => undefined);
    await devAuth.close();
    throw err;
  }
}

/**
 * The Assistant agent alone, against an Expense agent and authorization server that already run (`A2A_ISSUER` set):
 * `A2A_ISSUER`, `A2A_JWKS_URI`, `A2A_TOKEN_URL`, `EXPENSE_AGENT_URL`, `ASSISTANT_CLIENT_ID` and
 * `ASSISTANT_CLIENT_SECRET` are required; `EXPENSE_AUDIENCE`, `ASSISTANT_PORT`, `ASSISTANT_PUBLIC_URL`,
 * `ASSISTANT_DELEGATION_MAX_CHAIN` are optional (`ASSISTANT_PORT=0` picks a free port).
 * @throws Error naming the first missing or invalid variable.
 */
export async function settingsFromEnv(env: Record<string, string | undefined>): Promise<{ settings: AssistantSettings; port: number }> {
  const need = (name: string, what: string) => {
    const v = env[name];
    if (!v) throw new Error(`${name} is required with A2A_ISSUER (${what})`);
    return v;
  };
  const port = env[ASSISTANT_ENV.port] ? parsePort(env[ASSISTANT_ENV.port], ASSISTANT_ENV.port) || (await freePort()) : DEFAULT_ASSISTANT_PORT;
  const expenseAgentUrl = httpUrl(
    ASSISTANT_ENV.expenseAgentUrl,
    need(ASSISTANT_ENV.expenseAgentUrl, "the Expense agent's base URL"),
    "the Expense agent's base URL",
  );
  return {
    port,
    settings: {
      publicUrl: assistantPublicUrl(env[ASSISTANT_ENV.publicUrl], port, env.NODE_ENV),
      issuer: httpUrl('A2A_ISSUER', need('A2A_ISSUER', 'the issuer'), 'the exact iss of the tokens'),
      jwksUri: httpUrl('A2A_JWKS_URI', need('A2A_JWKS_URI', "the issuer's JWKS URL"), "the issuer's JWKS URL"),
      tokenUrl: httpUrl('A2A_TOKEN_URL', need('A2A_TOKEN_URL', "the issuer's token endpoint"), "the issuer's token endpoint"),
      expenseAgentUrl,
      expenseAudience: env[ASSISTANT_ENV.expenseAudience] || expenseAgentUrl.replace(/\/+$/, ''),
      clientId: need(ASSISTANT_ENV.clientId, "the Assistant agent's client id"),
      clientSecret: need(ASSISTANT_ENV.clientSecret, "the Assistant agent's client secret"),
      maxChainLength: parseMaxChain(env[ASSISTANT_ENV.maxChain]),
    },
  };
}

/** Single-quotes a value for a POSIX shell. */
function sh(v: string): string {
  return `'${v.replace(/'/g, `'\\''`)}'`;
}

/**
 * The start-up summary of the dev setup: where everything listens, the clients, and a ready-to-paste curl sequence
 * (the user app's token for the assistant, then a JSON-RPC `SendMessage`). The secret of a client overridden through
 * the environment is never printed (it is referenced as `$VAR`).
 */
export function delegationBanner(s: DelegationSample): string {
  const { user, assistant, rogue } = s.clients;
  const a = s.assistant.settings.publicUrl;
  const secret = (c: { clientSecret: string; secretFrom?: string }) => (c.secretFrom ? `(from $${c.secretFrom})` : c.clientSecret);
  const basic = user.secretFrom ? `"${user.clientId.replace(/["$`\\]/g, '\\$&')}:$${user.secretFrom}"` : sh(`${user.clientId}:${user.clientSecret}`);
  const send = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'SendMessage',
    params: { message: { messageId: 'm1', role: 'ROLE_USER', parts: [{ data: { amount: 12.9, currency: 'EUR', description: 'Lunch with a customer' } }] } },
  });
  return [
    '',
    `Expense Assistant Agent listening on ${s.assistant.url}  (card ${a}/.well-known/agent-card.json)`,
    `Expense Reimbursement Agent on ${s.expense.url}  (delegated tokens accepted from ${assistant.clientId})`,
    `Dev authorization server ${s.devAuth.issuer}  (token URL ${s.devAuth.tokenUrl}; DEVELOPMENT ONLY)`,
    '',
    'Dev clients (client_secret_basic):',
    `  ${user.clientId}  ${secret(user)}  ${user.scopes.join(' ')}  (calls the assistant: resource=${a})`,
    `  ${assistant.clientId}  ${secret(assistant)}  ${assistant.scopes.join(' ')}  (the assistant: token exchange, RFC 8693)`,
    `  ${rogue.clientId}  ${secret(rogue)}  ${rogue.scopes.join(' ')}  (untrusted by the Expense agent)`,
    '',
    'Try it (paste into a POSIX shell): the assistant files the expense with the Expense agent on your behalf',
    `  USER_TOKEN=$(curl -s -u ${basic} -d grant_type=client_credentials --data-urlencode ${sh(`scope=${user.scopes.join(' ')}`)} --data-urlencode ${sh(`resource=${a}`)} ${s.devAuth.tokenUrl} | node -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).access_token')`,
    `  curl -s -X POST ${a}/a2a/jsonrpc -H "Authorization: Bearer $USER_TOKEN" -H 'Content-Type: application/json' -H 'A2A-Version: 1.0' -d ${sh(send)}`,
    '',
    'Or: npm run demo (its "Delegation" steps start their own copy of this setup).',
    '',
  ].join('\n');
}

/**
 * `npm run start:assistant`: without `A2A_ISSUER`, the whole dev setup ({@link startDelegationSample}); with it, the
 * Assistant agent alone ({@link settingsFromEnv}). Stops on SIGTERM/SIGINT and exits 0 (1 when closing fails or takes
 * longer than 10 s); a start-up failure is one line on stderr and exit 1.
 */
export function main(): void {
  const env = process.env;
  const started: Promise<{ close(): Promise<void> }> = env.A2A_ISSUER
    ? (async () => {
        const { settings, port } = await settingsFromEnv(env);
        const a = await bootstrapAssistant({ settings, port, platform: (env.PLATFORM as Platform | undefined) || 'express' });
        console.log(`\nExpense Assistant Agent listening on ${a.url} (Expense agent ${settings.expenseAgentUrl}, issuer ${settings.issuer})\n`);
        return a;
      })()
    : startDelegationSample().then((s) => {
        console.log(delegationBanner(s));
        return s;
      });
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: shutting down`);
    setTimeout(() => process.exit(1), SHUTDOWN_TIMEOUT_MS).unref();
    started
      .then((s) => s.close())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  started.catch((err: unknown) => {
    process.stderr.write(`Expense Assistant Agent failed to start: ${String((err as Error)?.message ?? err).replace(/\s*\n\s*/g, ' ')}\n`);
    process.exit(1);
  });
}

if (require.main === module) main();
