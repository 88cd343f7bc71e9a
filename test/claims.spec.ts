import { AuthError, REASONS, resolveOptions } from 'nestjs-a2a-auth';
import {
  ChallengeBuilder,
  DEFAULT_MAX_TOKEN_LENGTH,
  DEFAULT_SCOPE_CLAIMS,
  assertScopes,
  checkClaims,
  errorBody,
  extractBearerToken,
  extractScopes,
  type ClaimPolicy,
} from 'nestjs-a2a-auth/core';
import { decodeForVerification } from '../libs/a2a-auth/src/core/decode';

// Unit tests of the framework-free core (libs/a2a-auth/src/token), no Nest.
const reasonOf = (f: () => unknown): string => {
  try {
    f();
    return 'ok';
  } catch (e) {
    return e instanceof AuthError ? e.reason : `not an AuthError: ${String(e)}`;
  }
};
const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const SIG = Buffer.alloc(256, 7).toString('base64url');

describe('REASONS', () => {
  it('maps every reason to a consistent status and RFC 6750 error', () => {
    for (const [reason, info] of Object.entries(REASONS)) {
      const expected = info.status === 400 ? 'invalid_request' : info.status === 403 ? 'insufficient_scope' : undefined;
      if (info.status === 400 || info.status === 403) expect([reason, info.error]).toEqual([reason, expected]);
      if (info.status === 503) expect(info.error).toBeUndefined();
      // RFC 9449 §7.1 / §9 add invalid_dpop_proof and use_dpop_nonce, for DPoP reasons only.
      const allowed = reason.startsWith('dpop_') ? ['invalid_token', 'invalid_dpop_proof', 'use_dpop_nonce'] : ['invalid_token'];
      if (info.status === 401 && info.error !== undefined) expect([reason, allowed.includes(info.error)]).toEqual([reason, true]);
      expect(info.description.length).toBeGreaterThan(0);
      const e = new AuthError(reason as never, 'detail');
      expect([e.status, e.error, e.description, e.message]).toEqual([info.status, info.error, info.description, 'detail']);
    }
  });
  it('never puts the precise check into invalid_token descriptions of signature, issuer, audience, alg or kid failures', () => {
    for (const r of [
      'invalid_signature',
      'invalid_issuer',
      'invalid_audience',
      'unsupported_alg',
      'unknown_kid',
      'missing_kid',
      'malformed_token',
      'missing_claim',
    ] as const) {
      expect(REASONS[r].description).toBe('The access token is invalid');
    }
  });
});

describe('extractBearerToken (RFC 6750 §2.1, RFC 7235)', () => {
  const T = `${b64({ alg: 'RS256' })}.${b64({})}.${SIG}`;
  it.each<[string, Parameters<typeof extractBearerToken>[0], Parameters<typeof extractBearerToken>[1], string]>([
    ['Bearer token', { authorization: `Bearer ${T}` }, {}, 'ok'],
    ['lower-case scheme', { authorization: `bearer ${T}` }, {}, 'ok'],
    ['several spaces', { authorization: `Bearer    ${T}` }, {}, 'ok'],
    ['surrounding whitespace', { authorization: `  Bearer ${T}  ` }, {}, 'ok'],
    ['token68 padding', { authorization: 'Bearer abc==' }, {}, 'ok'],
    ['no header', {}, {}, 'missing_token'],
    ['empty header', { authorization: '' }, {}, 'missing_token'],
    ['Bearer alone', { authorization: 'Bearer' }, {}, 'malformed_header'],
    ['Bearer and spaces', { authorization: 'Bearer   ' }, {}, 'malformed_header'],
    ['data after the token', { authorization: `Bearer ${T} x` }, {}, 'malformed_header'],
    ['comma after the token', { authorization: `Bearer ${T},` }, {}, 'malformed_header'],
    ['tab separator', { authorization: `Bearer\t${T}` }, {}, 'malformed_header'],
    ['non-token68 character', { authorization: 'Bearer a"b' }, {}, 'malformed_header'],
    ['padding in the middle', { authorization: 'Bearer ab=c' }, {}, 'malformed_header'],
    ['non-ASCII', { authorization: 'Bearer tök' }, {}, 'malformed_header'],
    ['unparseable scheme', { authorization: '"Bearer" x' }, {}, 'malformed_header'],
    ['Basic', { authorization: 'Basic dXNlcjpwYXNz' }, {}, 'unsupported_scheme'],
    ['DPoP', { authorization: `DPoP ${T}` }, {}, 'unsupported_scheme'],
    ['bare token without scheme', { authorization: T }, {}, 'unsupported_scheme'],
    ['two headers (array)', { authorization: [`Bearer ${T}`, `Bearer ${T}`] }, {}, 'multiple_tokens'],
    ['two header lines counted', { authorization: `Bearer ${T}`, authorizationCount: 2 }, {}, 'multiple_tokens'],
    ['query token, not allowed', { queryToken: T }, {}, 'missing_token'],
    ['query token, allowed', { queryToken: T }, { allowQueryToken: true }, 'ok'],
    ['query token not allowed, header and query together (RFC 6750 §2)', { authorization: `Bearer ${T}`, queryToken: 'x' }, {}, 'multiple_tokens'],
    ['query + header, allowed', { authorization: `Bearer ${T}`, queryToken: T }, { allowQueryToken: true }, 'multiple_tokens'],
    ['two query tokens, allowed', { queryToken: [T, T] }, { allowQueryToken: true }, 'multiple_tokens'],
    ['over the size limit', { authorization: `Bearer ${'a'.repeat(DEFAULT_MAX_TOKEN_LENGTH + 1)}` }, {}, 'token_too_large'],
    ['at the size limit', { authorization: `Bearer ${'a'.repeat(DEFAULT_MAX_TOKEN_LENGTH)}` }, {}, 'ok'],
    ['custom size limit', { authorization: 'Bearer abcdef' }, { maxTokenLength: 5 }, 'token_too_large'],
  ])('%s → %s', (_n, src, opts, reason) => {
    expect(reasonOf(() => extractBearerToken(src, opts))).toBe(reason);
  });
  it('returns the token itself', () => {
    expect(extractBearerToken({ authorization: `bearer   ${T}` })).toBe(T);
  });
  it('never echoes an unknown scheme (it may be a bare token) in the error detail', () => {
    try {
      extractBearerToken({ authorization: T });
    } catch (e) {
      expect((e as Error).message).toBe('unsupported scheme');
    }
    try {
      extractBearerToken({ authorization: 'basic abc' });
    } catch (e) {
      expect((e as Error).message).toBe('scheme Basic is not supported');
    }
  });
});

describe('decodeForVerification', () => {
  const ISS = 'https://issuer.example';
  const ok = { iss: ISS, exp: 1 };
  const tok = (h: unknown, p: unknown, s = SIG) => `${b64(h)}.${b64(p)}.${s}`;
  it.each<[string, string, string]>([
    ['valid', tok({ alg: 'RS256', kid: 'a' }, ok), 'ok'],
    ['two segments', `${b64({ alg: 'RS256' })}.${b64(ok)}`, 'malformed_token'],
    ['four segments', `${tok({ alg: 'RS256' }, ok)}.x`, 'malformed_token'],
    ['empty header', `.${b64(ok)}.${SIG}`, 'malformed_token'],
    ['empty payload', `${b64({ alg: 'RS256' })}..${SIG}`, 'malformed_token'],
    ['empty signature', `${b64({ alg: 'RS256' })}.${b64(ok)}.`, 'malformed_token'],
    ['alg none with an empty signature', `${b64({ alg: 'none' })}.${b64(ok)}.`, 'unsupported_alg'],
    ['alg None', tok({ alg: 'None' }, ok), 'unsupported_alg'],
    ['HS256', tok({ alg: 'HS256' }, ok), 'unsupported_alg'],
    ['alg not a string', tok({ alg: ['RS256'] }, ok), 'unsupported_alg'],
    ['no alg', tok({ kid: 'a' }, ok), 'unsupported_alg'],
    ['PS256 not in the allow-list', tok({ alg: 'PS256' }, ok), 'unsupported_alg'],
    ['header not base64url', `${b64({ alg: 'RS256' })}+.${b64(ok)}.${SIG}`, 'malformed_token'],
    ['header not JSON', `${b64('{')}.${b64(ok)}.${SIG}`, 'malformed_token'],
    ['header JSON null', `${b64('null')}.${b64(ok)}.${SIG}`, 'malformed_token'],
    ['payload a JSON string', tok({ alg: 'RS256' }, 'str'), 'malformed_token'],
    ['payload an array', tok({ alg: 'RS256' }, [ok]), 'malformed_token'],
    ['crit', tok({ alg: 'RS256', crit: ['b64'] }, ok), 'malformed_token'],
    ['kid a number', tok({ alg: 'RS256', kid: 1 }, ok), 'malformed_token'],
    ['signature with padding', tok({ alg: 'RS256' }, ok, `${SIG}==`), 'malformed_token'],
    ['signature not canonical base64url', tok({ alg: 'RS256' }, ok, SIG.slice(0, -1) + 'x'), 'malformed_token'],
    ['signature of impossible length', tok({ alg: 'RS256' }, ok, 'AAAAA'), 'malformed_token'],
    ['no iss', tok({ alg: 'RS256' }, { exp: 1 }), 'missing_claim'],
    ['iss not a string', tok({ alg: 'RS256' }, { iss: [ISS] }), 'missing_claim'],
    ['untrusted iss', tok({ alg: 'RS256' }, { iss: 'https://evil.example' }), 'invalid_issuer'],
    ['iss with a trailing slash', tok({ alg: 'RS256' }, { iss: `${ISS}/` }), 'invalid_issuer'],
  ])('%s → %s', (_n, t, reason) => {
    expect(reasonOf(() => decodeForVerification(t, ['RS256'], [ISS]))).toBe(reason);
  });
  it('the canonical last character of the real signature is accepted', () => {
    expect(SIG.length % 4).toBe(2);
    expect(reasonOf(() => decodeForVerification(tok({ alg: 'RS256' }, ok), ['RS256'], [ISS]))).toBe('ok');
  });
});

describe('checkClaims', () => {
  const NOW = 1_700_000_000;
  const policy = (p: Partial<ClaimPolicy> = {}): ClaimPolicy => ({ clockTolerance: 5, strict: false, audience: ['api'], validators: [], ...p });
  const claims = (c: Record<string, unknown> = {}) => {
    const out: Record<string, unknown> = { iss: 'i', aud: 'api', exp: NOW + 60, iat: NOW - 10, sub: 's', client_id: 'c', jti: 'j', ...c };
    for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
    return out;
  };
  const check = (c: Record<string, unknown>, p: Partial<ClaimPolicy> = {}, h: Record<string, unknown> = { typ: 'at+jwt' }) =>
    reasonOf(() => checkClaims(h, claims(c), policy(p), NOW));
  it.each<[string, Record<string, unknown>, Partial<ClaimPolicy>, string]>([
    ['valid', {}, {}, 'ok'],
    ['no exp', { exp: undefined }, {}, 'missing_claim'],
    ['exp a string', { exp: `${NOW + 60}` }, {}, 'missing_claim'],
    ['exp NaN-like', { exp: null }, {}, 'missing_claim'],
    ['exp now - 10 (beyond 5 s)', { exp: NOW - 10 }, {}, 'expired'],
    ['exp now - 4 (within 5 s)', { exp: NOW - 4 }, {}, 'ok'],
    ['exp exactly now - 5', { exp: NOW - 5 }, {}, 'expired'],
    ['exp passed, tolerance 0', { exp: NOW }, { clockTolerance: 0 }, 'expired'],
    ['nbf now + 10', { nbf: NOW + 10 }, {}, 'not_yet_valid'],
    ['nbf now + 5', { nbf: NOW + 5 }, {}, 'ok'],
    ['nbf not a number', { nbf: 'soon' }, {}, 'not_yet_valid'],
    ['iat now + 10', { iat: NOW + 10 }, {}, 'issued_in_future'],
    ['iat now + 5', { iat: NOW + 5 }, {}, 'ok'],
    ['iat a string', { iat: 'x' }, {}, 'missing_claim'],
    ['no iss', { iss: undefined }, {}, 'missing_claim'],
    ['aud missing', { aud: undefined }, {}, 'invalid_audience'],
    ['aud wrong', { aud: 'other' }, {}, 'invalid_audience'],
    ['aud array with ours', { aud: ['x', 'api'] }, {}, 'ok'],
    ['aud array without ours', { aud: ['x', 'y'] }, {}, 'invalid_audience'],
    ['aud array with a non-string', { aud: [{ api: 1 }] }, {}, 'invalid_audience'],
    ['maxTokenAge ok', { iat: NOW - 50 }, { maxTokenAge: 60 }, 'ok'],
    ['maxTokenAge exceeded', { iat: NOW - 100 }, { maxTokenAge: 60 }, 'token_too_old'],
    ['maxTokenAge without iat', { iat: undefined }, { maxTokenAge: 60 }, 'missing_claim'],
    ['strict, all present', {}, { strict: true }, 'ok'],
    ['strict, no jti', { jti: undefined }, { strict: true }, 'missing_claim'],
    ['strict, empty client_id', { client_id: '' }, { strict: true }, 'missing_claim'],
    ['strict, no sub', { sub: undefined }, { strict: true }, 'missing_claim'],
    ['strict, no iat', { iat: undefined }, { strict: true }, 'missing_claim'],
  ])('%s → %s', (_n, c, p, reason) => {
    expect(check(c, p)).toBe(reason);
  });
  it.each([
    [{ typ: 'at+jwt' }, 'ok'],
    [{ typ: 'application/at+jwt' }, 'ok'],
    [{ typ: 'JWT' }, 'invalid_typ'],
    [{}, 'invalid_typ'],
    [{ typ: ['at+jwt'] }, 'invalid_typ'],
  ])('strict typ %j → %s', (h, reason) => {
    expect(check({}, { strict: true }, h)).toBe(reason);
  });
  it('validators: true/undefined accept; false, a string or a throw reject with claim_validation_failed', () => {
    expect(check({}, { validators: [() => true, () => undefined] })).toBe('ok');
    expect(check({}, { validators: [() => false] })).toBe('claim_validation_failed');
    expect(check({}, { validators: [() => 'nope'] })).toBe('claim_validation_failed');
    expect(
      check(
        {},
        {
          validators: [
            () => {
              throw new Error('x');
            },
          ],
        },
      ),
    ).toBe('claim_validation_failed');
    expect(check({ exp: undefined }, { validators: [() => 'never reached'] })).toBe('missing_claim');
  });
});

describe('scopes', () => {
  it('reads scope and scp, strings and arrays, deduplicated, in order', () => {
    expect(DEFAULT_SCOPE_CLAIMS).toEqual(['scope', 'scp']);
    expect(extractScopes({ scope: 'a b  c', scp: ['c', 'd'] })).toEqual(['a', 'b', 'c', 'd']);
    expect(extractScopes({ scope: ['a b', 'c', 3, null] })).toEqual(['a', 'b', 'c']);
    expect(extractScopes({ scope: 7, scp: { a: 1 } })).toEqual([]);
    expect(extractScopes({ permissions: ['x:y'], scope: 'a' }, ['scope', 'permissions'])).toEqual(['a', 'x:y']);
    expect(extractScopes({ permissions: ['x:y'] })).toEqual([]);
  });
  it('assertScopes needs all required scopes and names them all', () => {
    expect(reasonOf(() => assertScopes(['a', 'b'], ['a', 'b']))).toBe('ok');
    expect(reasonOf(() => assertScopes(new Set(['a']), []))).toBe('ok');
    try {
      assertScopes(['a'], ['a', 'b']);
    } catch (e) {
      expect(e).toMatchObject({ reason: 'insufficient_scope', status: 403, requiredScopes: ['a', 'b'] });
    }
  });
});

describe('ChallengeBuilder and errorBody (RFC 6750 §3, RFC 9728 §5.1)', () => {
  const cb = new ChallengeBuilder({ realm: 'r "q"', resourceMetadata: 'https://rs.example/.well-known/oauth-protected-resource' });
  const prefix = 'Bearer realm="r \\"q\\"", resource_metadata="https://rs.example/.well-known/oauth-protected-resource"';
  it('bare challenge for missing credentials and other schemes', () => {
    expect(cb.forError(new AuthError('missing_token'))).toBe(prefix);
    expect(cb.forError(new AuthError('unsupported_scheme'))).toBe(prefix);
  });
  it('invalid_request, invalid_token and insufficient_scope with scope', () => {
    expect(cb.forError(new AuthError('malformed_header'))).toBe(`${prefix}, error="invalid_request", error_description="Malformed Authorization header"`);
    expect(cb.forError(new AuthError('expired'))).toBe(`${prefix}, error="invalid_token", error_description="The access token expired"`);
    expect(cb.forError(new AuthError('insufficient_scope', 'x', ['a', 'b']))).toBe(
      `${prefix}, error="insufficient_scope", error_description="The access token lacks a required scope", scope="a b"`,
    );
  });
  it('no challenge for 503', () => {
    expect(cb.forError(new AuthError('jwks_unavailable'))).toBeUndefined();
  });
  it('a builder without realm or metadata', () => {
    expect(new ChallengeBuilder({}).forError(new AuthError('missing_token'))).toBe('Bearer');
    expect(new ChallengeBuilder({}).forError(new AuthError('expired'))).toBe('Bearer error="invalid_token", error_description="The access token expired"');
  });
  it('errorBody never carries the detail', () => {
    const e = new AuthError('invalid_signature', 'secret detail eyJhbGciOi');
    expect(errorBody(e)).toEqual({ error: 'invalid_token', error_description: 'The access token is invalid' });
    expect(errorBody(new AuthError('missing_token'))).toEqual({ error: 'invalid_request', error_description: REASONS.missing_token.description });
    expect(errorBody(new AuthError('jwks_unavailable'))).toEqual({ error: 'temporarily_unavailable', error_description: REASONS.jwks_unavailable.description });
    expect(errorBody(new AuthError('insufficient_scope', '', ['a']))).toEqual({
      error: 'insufficient_scope',
      error_description: REASONS.insufficient_scope.description,
      scope: 'a',
    });
  });
});

describe('boot validation of the hardening options', () => {
  // resolveOptions is the module's boot-time check.
  const base = { issuer: 'https://issuer.example', audience: 'api' };
  it.each([
    [{ jwksTimeout: 0 }, /jwksTimeout.*greater than 0/],
    [{ jwksTimeout: -1 }, /jwksTimeout/],
    [{ maxTokenLength: 0 }, /maxTokenLength.*greater than 0/],
    [{ clockTolerance: -5 }, /clockTolerance/],
    [{ jwksCooldown: Number.NaN }, /jwksCooldown/],
    [{ algorithms: ['HS256'] }, /algorithms/],
    [{ algorithms: ['none'] }, /algorithms/],
    [{ algorithms: [] }, /algorithms/],
    [{ issuer: [] }, /issuer/],
    [{ audience: [] }, /audience/],
    [{ issuer: ['https://a.example', 'https://a.example'] }, /issuer/],
  ])('%j is refused', (extra, msg) => {
    expect(() => resolveOptions({ ...base, ...(extra as object) } as never)).toThrow(msg);
  });
  it('defaults, with their units', () => {
    const r = resolveOptions(base);
    expect({
      algorithms: r.algorithms,
      clockTolerance: r.clockTolerance,
      jwksTimeout: r.jwksTimeout,
      jwksCooldown: r.jwksCooldown,
      jwksCacheMaxAge: r.jwksCacheMaxAge,
      maxTokenLength: r.maxTokenLength,
      allowQueryToken: r.allowQueryToken,
      strict: r.strict,
      maxTokenAge: r.maxTokenAge,
      scopeClaims: r.scopeClaims,
      failureLogRatePerSecond: r.audit.failureLogRatePerSecond,
    }).toEqual({
      algorithms: ['RS256'],
      clockTolerance: 5,
      jwksTimeout: 5,
      jwksCooldown: 30,
      jwksCacheMaxAge: 600,
      maxTokenLength: 8192,
      allowQueryToken: false,
      strict: false,
      maxTokenAge: undefined,
      scopeClaims: ['scope', 'scp'],
      failureLogRatePerSecond: 20,
    });
  });
});
