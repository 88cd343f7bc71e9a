import { Inject, Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-jwt';
import { A2A_AUTH_RESOLVED_OPTIONS, A2A_JWT_STRATEGY } from '../constants';
import type { ResolvedOptions } from '../../core/options';
import { KeyRegistry } from '../../core/keys/key-registry';
import { countAuthorizationHeaders, type HttpRequestLike } from '../http/request-info';
import { extractBearerToken } from '../../core/bearer';
import { callerFromClaims, type A2ACaller } from '../../core/caller';
import { checkClaims, type ClaimPolicy } from '../../core/claims';
import { decodeForVerification, type DecodedToken } from '../../core/decode';
import { AuthError } from '../../core/errors';
import { extractScopes } from '../../core/scopes';

/** Internal: slot carrying the already-extracted bearer token from the guard to the strategy (not parsed twice). */
export const TOKEN_SLOT = Symbol('a2a-auth:token');
/** Internal: slot carrying the already-decoded, pre-checked token header and payload (not decoded twice). */
export const DECODED_SLOT = Symbol('a2a-auth:decoded');

type Slotted = { [TOKEN_SLOT]?: string; [DECODED_SLOT]?: DecodedToken; headers?: Record<string, string | string[] | undefined> };

/**
 * The Passport JWT strategy (`'a2a-jwt'`), built on passport-jwt and jwks-rsa.
 *
 * - `issuer`, `audience` and `algorithms` are top-level passport-jwt options (inside
 *   `jsonWebTokenOptions` passport-jwt 4 silently drops them); the constructor asserts they are set.
 * - Keys come from {@link KeyRegistry} (jwks-rsa fetches, parsed once into `KeyObject`s).
 * - After the signature, {@link checkClaims} enforces `exp` (required), `iat`, `maxTokenAge`,
 *   per-issuer audience, RFC 9068 strict mode and custom validators.
 *
 * Use it through the module's global guard, or directly with `AuthGuard('a2a-jwt')`
 * (then failures are Nest's plain 401, without RFC 6750 headers).
 * `validate` never throws: a failed check ends in `fail(AuthError)`, so it cannot become a 500.
 */
@Injectable()
export class A2AJwtStrategy extends PassportStrategy(Strategy, A2A_JWT_STRATEGY) {
  private readonly policies: Map<string, ClaimPolicy>;

  constructor(
    @Inject(A2A_AUTH_RESOLVED_OPTIONS) private readonly opts: ResolvedOptions,
    private readonly keys: KeyRegistry,
  ) {
    const allAudiences = [...new Set(opts.issuers.flatMap((i) => i.audience))];
    super({
      jwtFromRequest: (req: Slotted) => {
        if (req[TOKEN_SLOT]) return req[TOKEN_SLOT];
        try {
          // Direct use (AuthGuard('a2a-jwt')): the same header and query rules as the guard.
          return extractBearerToken(
            {
              authorization: req.headers?.authorization,
              authorizationCount: req.headers ? countAuthorizationHeaders(req as HttpRequestLike) : 0,
              queryToken: (req as HttpRequestLike).query?.access_token as string | string[] | undefined,
            },
            { maxTokenLength: opts.maxTokenLength, allowQueryToken: opts.allowQueryToken },
          );
        } catch {
          return null;
        }
      },
      secretOrKeyProvider: (req: Slotted, rawJwt: string, done: (err: unknown, key?: unknown) => void) => {
        let decoded: DecodedToken;
        try {
          decoded = req[DECODED_SLOT] ?? decodeForVerification(rawJwt, opts.algorithms, opts.issuerNames);
        } catch (e) {
          return done(e);
        }
        keys.getKey(decoded.payload.iss as string, decoded.header.kid as string | undefined, decoded.header.alg as string).then(
          (k) => done(null, k),
          (e) => done(e),
        );
      },
      passReqToCallback: false,
      issuer: opts.issuerNames,
      audience: allAudiences,
      algorithms: opts.algorithms,
      ignoreExpiration: false,
      jsonWebTokenOptions: { clockTolerance: opts.clockTolerance, complete: true },
    } as never);
    const v = (this as unknown as { _verifOpts: Record<string, unknown> })._verifOpts;
    if (!v?.issuer || !v?.audience || !v?.algorithms) {
      throw new Error('nestjs-a2a-auth: passport-jwt lost issuer/audience/algorithms; refusing to start');
    }
    this.policies = new Map(
      opts.issuers.map((i) => [
        i.issuer,
        { clockTolerance: opts.clockTolerance, maxTokenAge: opts.maxTokenAge, strict: opts.strict, audience: i.audience, validators: opts.claimValidators },
      ]),
    );
  }

  /**
   * passport-jwt verify callback with `complete: true`. Returns the {@link A2ACaller}, or
   * `[false, AuthError]` so passport-jwt calls `fail()` (401) instead of `error()` (500).
   */
  validate(decoded: { header: Record<string, unknown>; payload: Record<string, unknown> }): A2ACaller | [false, AuthError] {
    try {
      const { header, payload } = decoded;
      const policy = this.policies.get(payload.iss as string);
      if (!policy) throw new AuthError('invalid_issuer', 'untrusted issuer');
      checkClaims(header, payload, policy, Date.now() / 1000);
      return callerFromClaims(payload, extractScopes(payload, this.opts.scopeClaims), header.kid as string | undefined);
    } catch (e) {
      return [false, e instanceof AuthError ? e : new AuthError('claim_validation_failed', 'claim check failed')];
    }
  }
}
