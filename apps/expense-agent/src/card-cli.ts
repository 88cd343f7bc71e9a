import 'reflect-metadata';
import type { DynamicModule } from '@nestjs/common';
import { runCardCli } from 'nestjs-a2a-auth';
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

/**
 * `npm run card -- [--version 1.0|0.3] [--extended] [--check]`: prints the sample's Agent Card (the v1.0 wire card
 * by default) on stdout without listening on a port, for review and CI diffing. `--check` exits 1 on any
 * consistency problem (boot-check errors, scopes missing from the catalog, skills without requirements,
 * SDK round-trip mismatch, missing tokenUrl). Exit codes: 0 ok, 1 problem, 2 bad arguments.
 */
export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  return runCardCli(cardCliModule(), argv);
}

if (require.main === module) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
