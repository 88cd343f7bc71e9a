import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { DynamicModule } from '@nestjs/common';
import { runCardCli, type CardCliIo } from 'nestjs-a2a-auth';
import { AppModule } from './app.module';
import { ENV } from './config';

/** Issuer used when `A2A_ISSUER` is unset: building a card needs no call to it. */
export const PLACEHOLDER_ISSUER = 'https://auth.example.com';
/** Token endpoint advertised when neither `A2A_ISSUER` nor `A2A_TOKEN_URL` is set. */
export const PLACEHOLDER_TOKEN_URL = 'https://auth.example.com/oauth2/token';

/**
 * The sample's root module as the card CLI boots it: the configuration of `env` (default `process.env`), with a
 * placeholder issuer and token endpoint when `A2A_ISSUER` is unset, so that no authorization server is contacted
 * (the embedded dev server is not started). With `A2A_ISSUER` set and `A2A_TOKEN_URL` unset, the token endpoint is
 * discovered from the issuer, as the agent itself does.
 */
export function cardCliModule(env: Record<string, string | undefined> = process.env): DynamicModule {
  const values: Record<string, string | undefined> = { ...env };
  if (!env[ENV.issuer]) {
    values[ENV.issuer] = PLACEHOLDER_ISSUER;
    values[ENV.tokenUrl] = env[ENV.tokenUrl] || PLACEHOLDER_TOKEN_URL;
    values[ENV.jwksUri] = env[ENV.jwksUri] || `${PLACEHOLDER_ISSUER}/jwks.json`;
  }
  // Only `env` is read (hermetic when a test passes its own).
  return AppModule.forRoot({ values, skipProcessEnv: true });
}

/** The command line of {@link main}. */
export const USAGE = 'usage: card [--version 1.0|0.3] [--extended] [--check] [--out FILE]';

/**
 * `npm run card -- [--version 1.0|0.3] [--extended] [--check] [--out FILE]`: prints the sample's Agent Card (the v1.0
 * wire card by default) without listening on a port, for review and CI diffing. `--out FILE` writes it to FILE
 * instead of stdout (npm prints its own banner on stdout unless run with `-s`), only once the card was built, so a
 * failed run leaves an existing FILE as it was. `--check` exits 1 on any consistency problem (boot-check errors,
 * scopes missing from the catalog, skills without requirements, SDK round-trip mismatch, missing tokenUrl).
 * Exit codes: 0 ok, 1 problem (or FILE cannot be written), 2 bad arguments.
 * @param env the environment to read (default `process.env`); a relative FILE is resolved against its `INIT_CWD`.
 * @param io where the card and the messages go (default stdout and stderr).
 */
export async function main(
  argv: readonly string[] = process.argv.slice(2),
  env: Record<string, string | undefined> = process.env,
  io: CardCliIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) },
): Promise<number> {
  const rest: string[] = [];
  let outFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out' || a.startsWith('--out=')) {
      outFile = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (!outFile || outFile.startsWith('--')) {
        io.err(`--out needs a file name\n${USAGE}\n`);
        return 2;
      }
    } else if (a === '--help' || a === '-h') {
      io.out(`${USAGE}\n`);
      return 0;
    } else rest.push(a);
  }
  if (outFile !== undefined && rest.includes('--check')) {
    io.err(`--out cannot be combined with --check (which prints no card)\n${USAGE}\n`);
    return 2;
  }
  let card = '';
  // The library prints its own usage line; it does not know --out.
  const err = (t: string) => io.err(t.replace(/^usage: card .*$/m, USAGE));
  const code = await runCardCli(cardCliModule(env), rest, { out: outFile === undefined ? io.out : (t) => (card += t), err });
  if (outFile === undefined || code !== 0) return code;
  // npm runs scripts in the package root; INIT_CWD is where the user typed the command, as a shell redirect would be.
  const path = resolve(env.INIT_CWD || process.cwd(), outFile);
  try {
    writeFileSync(path, card);
  } catch (e) {
    io.err(`cannot write ${path}: ${(e as Error)?.message ?? String(e)}\n`);
    return 1;
  }
  io.err(`card written to ${path}\n`);
  return 0;
}

if (require.main === module) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`card: ${(e as Error)?.message ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
