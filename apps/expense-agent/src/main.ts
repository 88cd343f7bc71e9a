import { defaultKeyPrefix, enableA2AMediaType } from 'nestjs-a2a-auth';
import 'reflect-metadata';
import { createServer } from 'node:net';
import { ConsoleLogger, type INestApplication, type LoggerService, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { AppModule } from './app.module';
import { csv, DEFAULT_HOST, ENV, maskRedisUrl, parseClientRateLimit, parseDpopMode, parseIssuers, parsePort, parseStore, publicUrlOf } from './config';
import { DELEGATION_DEV_CLIENT_DEFAULTS, devClientsFromEnv, type DevClient } from './dev-clients';
import { DevAuthServerRefusedError, startDevAuthServer, type DevAuthServer } from './dev-auth-server';
import { DEV_CIBA_DEFAULTS } from './dev-ciba';
import { APPROVAL_ENV } from './a2a/expense-approval';

/** HTTP platforms the sample runs on. */
export type Platform = 'express' | 'fastify';

/** Options of {@link bootstrap}. */
export interface BootstrapOptions {
  /** HTTP platform. Default: `PLATFORM` env, else `'express'`. */
  platform?: Platform;
  /** Port. Default: `PORT` env, else 3000. `0` picks a free port (so the card can name it). */
  port?: number;
  /** Listening address. Default: `HOST` env, else `127.0.0.1`. */
  host?: string;
  /**
   * Environment to read instead of `process.env` (hermetic tests). When given, `process.env` is ignored entirely.
   * Default: `process.env`.
   */
  env?: Record<string, string | undefined>;
  /**
   * Nest logger: `false` silences it. Default: Nest's console logger, without Nest's own report of a start-up failure
   * (`bootstrap()` rejects with that error, so its caller reports it once).
   */
  logger?: LoggerService | LogLevel[] | false;
  /** Print the start-up summary (dev clients, curl sequence). Default true; a function receives the text instead. */
  banner?: boolean | ((text: string) => void);
}

/** A running sample agent. */
export interface RunningAgent {
  app: INestApplication;
  platform: Platform;
  /** Where it listens, e.g. `http://127.0.0.1:3000`. */
  url: string;
  /** Its public base URL (`PUBLIC_URL`), used in the Agent Card. */
  publicUrl: string;
  /** The embedded dev authorization server, when no `A2A_ISSUER` was configured. */
  devAuth?: DevAuthServer;
  /** The start-up summary text. */
  banner: string;
  /** Stops the agent, then the dev authorization server. */
  close(): Promise<void>;
}

/** How long a SIGTERM/SIGINT shutdown of the agent process may take before it exits anyway, milliseconds. */
export const SHUTDOWN_TIMEOUT_MS = 10_000;

/**
 * Nest's console logger minus the `ExceptionHandler` line: on a failed start Nest logs the error with its stack and then
 * rethrows it (`abortOnError: false`), so without this the same error would be printed twice.
 */
class StartupLogger extends ConsoleLogger {
  override error(message: unknown, ...rest: unknown[]): void {
    if (rest[rest.length - 1] === 'ExceptionHandler') return;
    super.error(message, ...rest);
  }
}

/** The logger handed to Nest for {@link BootstrapOptions.logger}. */
function nestLogger(logger: BootstrapOptions['logger']): LoggerService | false {
  if (logger === false) return false;
  if (logger === undefined) return new StartupLogger();
  if (Array.isArray(logger)) return new StartupLogger({ logLevels: logger });
  return logger;
}

/** Re-words a listen failure on a taken port so that it names the variable to change; other errors pass through. */
function portInUse(err: unknown, variable: string, port: number, host: string, fix: string): unknown {
  if ((err as NodeJS.ErrnoException)?.code !== 'EADDRINUSE') return err;
  return new Error(`${variable} ${port} on ${host} is already in use (EADDRINUSE): ${fix}`);
}

/** Asks the OS for a free port on `host` (used for port 0, because the card must name the real port before listen). */
async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts the sample's embedded development authorization server as `bootstrap()` does without `A2A_ISSUER`: the dev
 * clients of `env` (`DEV_*`), audience `A2A_AUDIENCE` (first) else `publicUrl`, on 127.0.0.1:`DEV_AUTH_PORT` (default
 * a free port), CIBA for the dev users. Several instances share one by getting {@link devAuthEnv} of it.
 * @throws DevAuthServerRefusedError with `NODE_ENV=production`; an Error naming `DEV_AUTH_PORT` when it is taken.
 */
export async function startSampleDevAuthServer(env: Record<string, string | undefined>, publicUrl: string): Promise<DevAuthServer> {
  const clients = devClientsFromEnv(env);
  const devPort = env.DEV_AUTH_PORT ? parsePort(env.DEV_AUTH_PORT, 'DEV_AUTH_PORT') : 0;
  return startDevAuthServer({
    audience: csv(env[ENV.audience])?.[0] ?? publicUrl,
    clients: [clients.submitter, clients.approver, clients.dpop, clients.opaque],
    introspectors: [clients.introspector],
    keyClients: [clients.keyed],
    port: devPort,
    nodeEnv: env.NODE_ENV,
    // Human approval of submissions (OpenID Connect CIBA, poll mode): the agent's own client and the dev users.
    ciba: { clients: [{ ...DEV_CIBA_DEFAULTS.client, scopes: [...DEV_CIBA_DEFAULTS.client.scopes] }], users: [...DEV_CIBA_DEFAULTS.users] },
  }).catch((err: unknown) => {
    throw portInUse(err, 'DEV_AUTH_PORT', devPort, '127.0.0.1', 'stop the other process, or unset DEV_AUTH_PORT to use a free port');
  });
}

/**
 * The configuration values that make the agent trust the dev authorization server `devAuth` (issuer, audience, JWKS,
 * token endpoint, introspection and CIBA credentials of the dev clients, delegation from the Assistant's dev client),
 * as `bootstrap()` sets them for its own dev server. Contains the dev introspection and CIBA secrets: never print it.
 */
export function devAuthEnv(devAuth: DevAuthServer, env: Record<string, string | undefined>): Record<string, string> {
  const clients = devClientsFromEnv(env);
  return {
    [ENV.issuer]: devAuth.issuer,
    [ENV.audience]: devAuth.audience,
    [ENV.jwksUri]: devAuth.jwksUri,
    [ENV.tokenUrl]: devAuth.tokenUrl,
    // Opaque tokens of the dev server's `expense-opaque` client are checked there (RFC 7662) with the agent's own credentials.
    [ENV.introspectionUrl]: devAuth.introspectionUrl,
    [ENV.introspectionClientId]: clients.introspector.clientId,
    [ENV.introspectionClientSecret]: clients.introspector.clientSecret,
    [APPROVAL_ENV.clientId]: DEV_CIBA_DEFAULTS.client.clientId,
    [APPROVAL_ENV.clientSecret]: DEV_CIBA_DEFAULTS.client.clientSecret,
    [APPROVAL_ENV.loginHint]: env[APPROVAL_ENV.loginHint] || DEV_CIBA_DEFAULTS.loginHint,
    // Delegated tokens are accepted from the Assistant agent's dev client (a real issuer: off until configured).
    [ENV.delegation]: env[ENV.delegation] || 'on',
    DEV_ASSISTANT_ID: env.DEV_ASSISTANT_ID || DELEGATION_DEV_CLIENT_DEFAULTS.assistant.clientId,
  };
}

/**
 * Starts the Expense Reimbursement Agent.
 *
 * - Without `A2A_ISSUER`: starts the embedded development authorization server (oidc-provider) on 127.0.0.1
 *   (`DEV_AUTH_PORT`, default ephemeral), and the agent trusts it (issuer, JWKS) and advertises its token endpoint.
 *   Refuses with `DevAuthServerRefusedError` when `NODE_ENV=production`.
 * - With `A2A_ISSUER` (and `A2A_AUDIENCE`, `A2A_JWKS_URI`, `A2A_TOKEN_URL` as needed): no dev server; that issuer is trusted.
 * Listens on `HOST:PORT` (default 127.0.0.1:3000).
 * @throws Error when the configuration is invalid (the message names the variable or option) or the port is taken.
 */
export async function bootstrap(o: BootstrapOptions = {}): Promise<RunningAgent> {
  const env = o.env ?? process.env;
  const platform = o.platform ?? ((env.PLATFORM as Platform | undefined) || 'express');
  if (platform !== 'express' && platform !== 'fastify') throw new Error(`PLATFORM must be "express" or "fastify", got ${JSON.stringify(platform)}`);
  const host = o.host ?? (env[ENV.host] || DEFAULT_HOST);
  let port = o.port ?? parsePort(env[ENV.port]);
  if (port === 0) port = await freePort(host);
  const issuers = parseIssuers(env[ENV.issuer]);
  // Wrong values are refused before the dev authorization server starts.
  parseDpopMode(env[ENV.dpop]);
  parseStore((k) => env[k] || undefined);
  parseClientRateLimit(env[ENV.clientRateLimit]);
  // Without an issuer the dev server would be needed; its refusal is the more useful message in production.
  if (!issuers && env.NODE_ENV === 'production') throw new DevAuthServerRefusedError();
  const publicUrl = publicUrlOf(env[ENV.publicUrl], port, env.NODE_ENV);
  const values: Record<string, string | undefined> = { ...(o.env ?? {}), [ENV.port]: String(port), [ENV.publicUrl]: publicUrl };

  let devAuth: DevAuthServer | undefined;
  if (!issuers) {
    devAuth = await startSampleDevAuthServer(env, publicUrl);
    Object.assign(values, devAuthEnv(devAuth, env));
  }

  let app: INestApplication | undefined;
  try {
    const adapter = platform === 'fastify' ? new FastifyAdapter() : new ExpressAdapter();
    if (adapter instanceof ExpressAdapter) adapter.getInstance().disable('x-powered-by'); // don't advertise the stack
    app = await NestFactory.create(AppModule.forRoot({ values, skipProcessEnv: o.env !== undefined }), adapter as never, {
      logger: nestLogger(o.logger),
      abortOnError: false,
      // Keep-alive and server-sent-event connections would otherwise hold close() (and the port) open.
      forceCloseConnections: true,
    });
    enableA2AMediaType(app); // A2A clients may send application/a2a+json
    await app.listen(port, host);
  } catch (err) {
    await app?.close().catch(() => undefined);
    await devAuth?.close();
    throw portInUse(err, 'PORT', port, host, 'stop the other process or set PORT to a free port');
  }
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const url = `http://${shownHost}:${port}`;
  const banner = startupBanner({ url, publicUrl, platform, devAuth, env });
  if (o.banner !== false) (typeof o.banner === 'function' ? o.banner : (t: string) => console.log(t))(banner);
  const nest = app;
  let closing: Promise<void> | undefined;
  return {
    app: nest,
    platform,
    url,
    publicUrl,
    devAuth,
    banner,
    close: () =>
      (closing ??= (async () => {
        await nest.close();
        await devAuth?.close();
      })()),
  };
}

/** Single-quotes a value for a POSIX shell. */
function sh(v: string): string {
  return `'${v.replace(/'/g, `'\\''`)}'`;
}

/** `id:secret` for `curl -u`; an overridden secret is referenced as `$VAR`, never printed. */
function curlUser(c: DevClient): string {
  return c.secretFrom ? `"${c.clientId.replace(/["$`\\]/g, '\\$&')}:$${c.secretFrom}"` : sh(`${c.clientId}:${c.clientSecret}`);
}

/**
 * The start-up summary: where the agent listens, whom it trusts, and (with the dev server) the dev clients and a
 * ready-to-paste curl sequence. Secrets overridden through the environment are never printed.
 */
export function startupBanner(i: {
  url: string;
  publicUrl: string;
  platform: Platform;
  devAuth?: DevAuthServer;
  env: Record<string, string | undefined>;
}): string {
  const { publicUrl: p, devAuth: d } = i;
  const lines = ['', `Expense Reimbursement Agent listening on ${i.url} (${i.platform})`, `  Agent Card     ${p}/.well-known/agent-card.json`];
  const security = [
    `  DPoP           ${parseDpopMode(i.env[ENV.dpop])}  (RFC 9449 sender-constrained tokens; ${ENV.dpop}=off|allowed|required)`,
    ...sharedStateLines(i.env, p),
  ];
  if (!d) {
    lines.push(
      `  Issuer         ${i.env[ENV.issuer]} (external authorization server)`,
      `  Audience       ${csv(i.env[ENV.audience])?.join(', ') ?? p}`,
      ...security,
      '',
    );
    return lines.join('\n');
  }
  const [sub, appr] = d.clients;
  const json = (field: string) => `node -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).${field}'`;
  const token = (c: DevClient) =>
    `$(curl -s -u ${curlUser(c)} -d grant_type=client_credentials --data-urlencode ${sh(`scope=${c.scopes.join(' ')}`)} ${d.tokenUrl} | ${json('access_token')})`;
  const secretCol = (c: DevClient) => (c.secretFrom ? `(from $${c.secretFrom})` : c.clientSecret);
  const w = Math.max(...d.clients.map((c) => c.clientId.length), 9);
  const ws = Math.max(...d.clients.map((c) => secretCol(c).length), 6);
  lines.push(
    `  Issuer         ${d.issuer}  (embedded DEVELOPMENT authorization server, oidc-provider; never use in production)`,
    `  Token URL      ${d.tokenUrl}  (client_credentials; JWT access tokens, RS256, ${d.tokenTtl} s)`,
    `  Audience       ${d.audience}`,
    ...security,
    '',
    'Dev clients (client_secret_basic):',
    `  ${'client_id'.padEnd(w)}  ${'secret'.padEnd(ws)}  scopes`,
    ...d.clients.map(
      (c) =>
        `  ${c.clientId.padEnd(w)}  ${secretCol(c).padEnd(ws)}  ${c.scopes.join(' ')}${c.dpopBoundAccessTokens ? '  (DPoP-bound tokens only, RFC 9449)' : c.accessTokenFormat === 'opaque' ? '  (opaque tokens, introspected, RFC 7662)' : ''}`,
    ),
    '',
    'Try it (paste into a POSIX shell):',
    `  SUBMITTER=${token(sub)}`,
    `  ID=$(curl -s -X POST ${p}/expenses -H "Authorization: Bearer $SUBMITTER" -H 'Content-Type: application/json' -d '{"amount":42.5,"currency":"EUR","description":"Taxi to the airport"}' | ${json('id')})`,
    `  curl -i ${p}/expenses/$ID -H "Authorization: Bearer $SUBMITTER"                 # 200`,
    `  curl -i -X POST ${p}/expenses/$ID/approve -H "Authorization: Bearer $SUBMITTER"  # 403 insufficient_scope`,
    `  curl -i ${p}/expenses                                                           # 401 no token`,
    `  APPROVER=${token(appr)}`,
    `  curl -i -X POST ${p}/expenses/$ID/approve -H "Authorization: Bearer $APPROVER"   # 200`,
    '',
    ...(d.ciba
      ? [
          `Human approval (CIBA, users ${DEV_CIBA_DEFAULTS.users.join(', ')}): pending requests at GET ${d.issuer}/dev/ciba/pending,`,
          `  answer with curl -X POST ${d.issuer}/dev/ciba/<auth_req_id>/approve (or /deny)`,
          '',
        ]
      : []),
    'Or run the calling agent: npm run demo',
    '',
  );
  return lines.join('\n');
}

/**
 * The banner's lines on shared state: Redis (URL with its password masked, key prefix) or this process's memory, and
 * the per-client limit.
 */
function sharedStateLines(env: Record<string, string | undefined>, publicUrl: string): string[] {
  const store = parseStore((k) => env[k] || undefined);
  const limit = parseClientRateLimit(env[ENV.clientRateLimit]);
  return [
    store?.redis && 'url' in store.redis
      ? `  State          shared in Redis ${maskRedisUrl(store.redis.url)}, keys ${store.keyPrefix ?? defaultKeyPrefix(publicUrl)}*  (rate limits, DPoP replays, introspection cache)`
      : `  State          per process, in memory  (set ${ENV.redisUrl} to share it between instances)`,
    limit
      ? `  Client limit   ${limit.limit} requests per ${limit.ttl} s per client  (${ENV.clientRateLimit})`
      : `  Client limit   off  (${ENV.clientRateLimit}=<requests>/<seconds>, e.g. 100/60)`,
  ];
}

/**
 * Runs the agent as a process (`npm start`): starts it, then shuts it down, together with the embedded dev
 * authorization server, on SIGTERM or SIGINT and exits 0 (1 if closing fails or takes longer than
 * {@link SHUTDOWN_TIMEOUT_MS} milliseconds). A start-up failure is printed as one line on stderr and exits 1.
 */
export function main(): void {
  const started = bootstrap();
  let stopping = false;
  // The handlers are in place before the agent prints that it listens, so a signal that follows that line at once is
  // never handled by Node's default (which would kill the process with the signal instead of closing it).
  const stop = (signal: NodeJS.Signals) => {
    // Ctrl-C under npm delivers SIGINT twice (from the terminal and forwarded by npm): one shutdown is enough.
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: shutting down`);
    setTimeout(() => {
      process.stderr.write(`Expense Reimbursement Agent: shutdown took longer than ${SHUTDOWN_TIMEOUT_MS} ms; exiting anyway\n`);
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS).unref();
    started
      .then((agent) => agent.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          process.stderr.write(`Expense Reimbursement Agent: shutdown failed: ${oneLine(err)}\n`);
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  started.catch((err: unknown) => {
    process.stderr.write(`Expense Reimbursement Agent failed to start: ${oneLine(err)}\n`);
    process.exit(1);
  });
}

/** An error's message on one line (a newcomer needs the cause, not the stack). */
function oneLine(err: unknown): string {
  return String((err as Error)?.message ?? err).replace(/\s*\n\s*/g, ' ');
}

if (require.main === module) main();
