import { createPrivateKey, randomUUID, type KeyObject } from 'node:crypto';
import { SignJWT, type JWK } from 'jose';

/**
 * OAuth 2.0 client authentication at an authorization server's endpoints (token, introspection), shared by the
 * calling side (client credentials, token exchange) and the resource server's introspection client.
 *
 * - `client_secret_basic` / `client_secret_post`: RFC 6749 §2.3.1.
 * - `private_key_jwt`: RFC 7523 §2.2 and §3, OpenID Connect Core 1.0 §9: a JWT signed with the client's private key,
 *   sent as `client_assertion` with `client_assertion_type` {@link CLIENT_ASSERTION_TYPE}.
 */

/** RFC 7523 §2.2 `client_assertion_type` of a JWT client assertion. */
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Client authentication methods (names from RFC 7591 §2 `token_endpoint_auth_method`). */
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';

/** Signature algorithms of a `private_key_jwt` assertion (RFC 7518 §3; EdDSA per RFC 8037). */
export type ClientAssertionAlgorithm = 'RS256' | 'PS256' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA';

/** A private key: PEM (PKCS#8, PKCS#1 or SEC1), a private JWK (RFC 7517), or a Node `KeyObject`. */
export type ClientPrivateKeyMaterial = string | JWK | KeyObject;

/** A private key with the `kid` to put in the assertion header and, for an RSA key, the algorithm. */
export interface ClientSigningKey {
  /** The private key. */
  key: ClientPrivateKeyMaterial;
  /** `kid` header (the id of its public key in the client's registered JWKS). Default: the JWK's `kid`, else none. */
  kid?: string;
  /** Algorithm. Default: from the key (RSA → RS256, RSA-PSS → PS256, P-256 → ES256, P-384 → ES384, P-521 → ES512, Ed25519 → EdDSA), or the JWK's `alg`. */
  alg?: ClientAssertionAlgorithm;
}

/**
 * Where the private key comes from: the key, or a function returning it (called for every request, never cached, so a
 * key rotated in a secret store is used without a restart).
 */
export type ClientPrivateKeySource =
  ClientPrivateKeyMaterial | ClientSigningKey | (() => ClientPrivateKeyMaterial | ClientSigningKey | Promise<ClientPrivateKeyMaterial | ClientSigningKey>);

/** The client secret, or a function returning it (called for every request, never cached: a rotated secret takes effect at once). */
export type ClientSecretSource = string | (() => string | Promise<string>);

/** How a client authenticates; exactly one of `clientSecret` and `privateKey`. */
export interface ClientAuthOptions {
  /** `client_id` (for `private_key_jwt` also the assertion's `iss` and `sub`). */
  clientId: string;
  /** The client secret or its source. Never logged or put in an error. */
  clientSecret?: ClientSecretSource;
  /** The private key or its source, for `private_key_jwt`. Never logged. */
  privateKey?: ClientPrivateKeySource;
  /** Default: `'private_key_jwt'` with `privateKey`, else `'client_secret_basic'`. */
  authMethod?: ClientAuthMethod;
  /** `kid` of the assertion header when the key does not carry one (a PEM or `KeyObject`). Default none. */
  privateKeyId?: string;
  /** Assertion algorithm when the key does not imply one (e.g. `PS256` for an RSA key). Default: from the key. */
  assertionAlgorithm?: ClientAssertionAlgorithm;
  /**
   * `aud` of the assertion. Default: the URL of the endpoint called (the token endpoint; RFC 7523 §3 and OIDC Core §9
   * allow it). Set the authorization server's issuer identifier when the endpoint is reached through a proxy or the
   * server wants the issuer (oidc-provider accepts either).
   */
  assertionAudience?: string;
  /** Assertion lifetime (`exp - iat`), seconds. Default 60. */
  assertionLifetimeSeconds?: number;
}

/** {@link ClientAuthOptions} after validation. The credential is not enumerable (it never shows when inspected). */
export interface ResolvedClientAuth {
  /** The method used. */
  readonly method: ClientAuthMethod;
  /** `client_id`. */
  readonly clientId: string;
  /** The secret or its source (`client_secret_*`); not enumerable. */
  readonly secret?: ClientSecretSource;
  /** The key or its source (`private_key_jwt`); not enumerable. */
  readonly privateKey?: ClientPrivateKeySource;
  /** `privateKeyId`. */
  readonly kid?: string;
  /** `assertionAlgorithm`. */
  readonly alg?: ClientAssertionAlgorithm;
  /** `assertionAudience`; `undefined`: the URL of the endpoint called. */
  readonly audience?: string;
  /** Seconds. */
  readonly lifetimeSeconds: number;
  /** Whether the credential comes from a function, so asking again may give a rotated value. */
  readonly rotatable: boolean;
}

/** The credential could not be obtained or used (the source threw, gave nothing, or gave an unusable key). Says why, never the value. */
export class ClientAuthenticationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClientAuthenticationError';
  }
}

const ALGS: readonly ClientAssertionAlgorithm[] = ['RS256', 'PS256', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/**
 * Validates client authentication options.
 * @param fail builds the caller's configuration error from (option name, problem).
 * @throws what `fail` returns: neither or both of `clientSecret` / `privateKey`, a method that does not fit the
 *   credential, an unknown algorithm, a non-positive lifetime, an `assertionAudience` that is not an absolute URL.
 */
export function resolveClientAuth(o: ClientAuthOptions, fail: (option: string, problem: string) => Error, prefix = ''): ResolvedClientAuth {
  const name = (k: string) => `${prefix}${k}`;
  if (typeof o.clientId !== 'string' || o.clientId === '') throw fail(name('clientId'), 'is required');
  const hasSecret = o.clientSecret !== undefined && o.clientSecret !== null && o.clientSecret !== '';
  const hasKey = o.privateKey !== undefined && o.privateKey !== null && o.privateKey !== '';
  if (hasSecret === hasKey) {
    throw fail(
      hasSecret ? name('privateKey') : name('clientSecret'),
      hasSecret ? 'and clientSecret are exclusive: give exactly one' : 'or privateKey is required (exactly one)',
    );
  }
  if (hasSecret && typeof o.clientSecret !== 'string' && typeof o.clientSecret !== 'function') {
    throw fail(name('clientSecret'), 'must be a string or a function returning one');
  }
  const method = o.authMethod ?? (hasKey ? 'private_key_jwt' : 'client_secret_basic');
  if (!['client_secret_basic', 'client_secret_post', 'private_key_jwt'].includes(method)) {
    throw fail(name('authMethod'), `must be client_secret_basic, client_secret_post or private_key_jwt (got ${JSON.stringify(method)})`);
  }
  if (hasKey && method !== 'private_key_jwt') throw fail(name('authMethod'), `${method} needs clientSecret; privateKey is used with private_key_jwt`);
  if (hasSecret && method === 'private_key_jwt') throw fail(name('authMethod'), 'private_key_jwt needs privateKey, not clientSecret');
  if (o.assertionAlgorithm !== undefined && !ALGS.includes(o.assertionAlgorithm)) {
    throw fail(name('assertionAlgorithm'), `must be one of ${ALGS.join(', ')}`);
  }
  const lifetime = o.assertionLifetimeSeconds ?? 60;
  if (typeof lifetime !== 'number' || !Number.isFinite(lifetime) || lifetime <= 0 || lifetime > 3600) {
    throw fail(name('assertionLifetimeSeconds'), 'must be a number of seconds in (0, 3600]');
  }
  if (o.assertionAudience !== undefined) {
    try {
      new URL(o.assertionAudience);
    } catch {
      throw fail(name('assertionAudience'), 'must be an absolute URL (the token endpoint or the issuer identifier)');
    }
  }
  if (hasKey && typeof o.privateKey !== 'function') {
    // A static key is checked now, so a wrong key fails at start-up, not at the first call.
    try {
      signingKeyOf(o.privateKey as ClientPrivateKeyMaterial | ClientSigningKey, o.privateKeyId, o.assertionAlgorithm);
    } catch (e) {
      throw fail(name('privateKey'), (e as Error).message.replace(/^privateKey /, ''));
    }
  }
  const r: ResolvedClientAuth = {
    method,
    clientId: o.clientId,
    kid: o.privateKeyId,
    alg: o.assertionAlgorithm,
    audience: o.assertionAudience,
    lifetimeSeconds: lifetime,
    rotatable: typeof (hasKey ? o.privateKey : o.clientSecret) === 'function',
  };
  Object.defineProperty(r, hasKey ? 'privateKey' : 'secret', { value: hasKey ? o.privateKey : o.clientSecret, enumerable: false });
  return r;
}

/** What to add to one request to an authorization server endpoint. */
export interface ClientAuthRequestParts {
  /** Headers (`authorization: Basic …` for `client_secret_basic`). */
  headers: Record<string, string>;
  /** Form parameters (`client_id` and `client_secret`, or `client_assertion_type` and `client_assertion`). */
  params: Record<string, string>;
  /** The secret or assertion that was used: strings to remove from any server text repeated in an error. */
  redact: string[];
}

/** Default bound on one call of a credential source function (a secret store that does not answer), milliseconds. */
export const DEFAULT_CREDENTIAL_SOURCE_TIMEOUT_MS = 10_000;

/** Calls a credential source function, bounded by `timeoutMs` (a hung secret store must not hang every token request). */
async function fromSource<T>(what: string, source: () => T | Promise<T>, timeoutMs: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ClientAuthenticationError(`the ${what} source gave no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([Promise.resolve().then(source), late]);
  } catch (e) {
    if (e instanceof ClientAuthenticationError) throw e;
    throw new ClientAuthenticationError(`the ${what} source threw`);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The client authentication of one request to `endpoint`, reading the credential from its source (a function is
 * called every time, and must answer within `timeoutMs`).
 * @param endpoint the URL called: the default `aud` of an assertion.
 * @param timeoutMs bound on the source function, milliseconds (the caller's request timeout); never more than
 *   {@link DEFAULT_CREDENTIAL_SOURCE_TIMEOUT_MS}, the default.
 * @throws ClientAuthenticationError when the source throws, does not answer in time, or gives an empty secret or an
 *   unusable key.
 */
export async function clientAuthentication(
  auth: ResolvedClientAuth,
  endpoint: string,
  timeoutMs = DEFAULT_CREDENTIAL_SOURCE_TIMEOUT_MS,
): Promise<ClientAuthRequestParts> {
  const ms = Math.max(1, Math.min(timeoutMs, DEFAULT_CREDENTIAL_SOURCE_TIMEOUT_MS));
  if (auth.method === 'private_key_jwt') {
    const s = auth.privateKey!;
    const key: ClientPrivateKeyMaterial | ClientSigningKey = typeof s === 'function' ? await fromSource('privateKey', s, ms) : s;
    const assertion = await createClientAssertion({
      clientId: auth.clientId,
      audience: auth.audience ?? endpoint,
      key,
      kid: auth.kid,
      alg: auth.alg,
      lifetimeSeconds: auth.lifetimeSeconds,
    });
    return {
      headers: {},
      params: { client_id: auth.clientId, client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: assertion },
      redact: [assertion],
    };
  }
  const src = auth.secret!;
  const secret: unknown = typeof src === 'function' ? await fromSource('clientSecret', src, ms) : src;
  if (typeof secret !== 'string' || secret === '') throw new ClientAuthenticationError('the clientSecret source gave no secret');
  if (auth.method === 'client_secret_post') return { headers: {}, params: { client_id: auth.clientId, client_secret: secret }, redact: [secret] };
  // RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined for Basic.
  return {
    headers: { authorization: `Basic ${Buffer.from(`${formEncode(auth.clientId)}:${formEncode(secret)}`).toString('base64')}` },
    params: {},
    redact: [secret],
  };
}

/**
 * A `private_key_jwt` client assertion (RFC 7523 §3, OIDC Core §9): header `alg` (from the key unless given), `typ`
 * `JWT`, `kid` when known; claims `iss` = `sub` = the client id, `aud`, a random `jti`, `iat` now and `exp` =
 * `iat + lifetimeSeconds`.
 * @param p.lifetimeSeconds seconds, default 60.
 * @param p.now clock in milliseconds since the epoch, default `Date.now()`.
 * @throws ClientAuthenticationError for a public, symmetric, too small (RSA under 2048 bits) or unsupported key, or an
 *   algorithm that does not fit it.
 */
export async function createClientAssertion(p: {
  clientId: string;
  audience: string;
  key: ClientPrivateKeyMaterial | ClientSigningKey;
  kid?: string;
  alg?: ClientAssertionAlgorithm;
  lifetimeSeconds?: number;
  now?: number;
}): Promise<string> {
  const k = signingKeyOf(p.key, p.kid, p.alg);
  const iat = Math.floor((p.now ?? Date.now()) / 1000);
  return new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: k.alg, typ: 'JWT', ...(k.kid ? { kid: k.kid } : {}) })
    .setIssuer(p.clientId)
    .setSubject(p.clientId)
    .setAudience(p.audience)
    .setIssuedAt(iat)
    .setExpirationTime(iat + Math.ceil(p.lifetimeSeconds ?? 60))
    .sign(k.key);
}

function isSigningKey(v: unknown): v is ClientSigningKey {
  return !!v && typeof v === 'object' && 'key' in v && !('kty' in v) && !('asymmetricKeyType' in v);
}

/** The key parsed, with its algorithm and kid. @throws ClientAuthenticationError */
function signingKeyOf(
  material: ClientPrivateKeyMaterial | ClientSigningKey,
  kid?: string,
  alg?: ClientAssertionAlgorithm,
): { key: KeyObject; alg: ClientAssertionAlgorithm; kid?: string } {
  let m: ClientPrivateKeyMaterial;
  if (isSigningKey(material)) {
    m = material.key;
    kid = material.kid ?? kid;
    alg = material.alg ?? alg;
  } else m = material;
  let key: KeyObject;
  try {
    if (typeof m === 'string') key = createPrivateKey(m);
    else if (m && typeof m === 'object' && 'kty' in m) {
      const jwk = m as JWK;
      kid = kid ?? (typeof jwk.kid === 'string' ? jwk.kid : undefined);
      alg = alg ?? (ALGS.includes(jwk.alg as ClientAssertionAlgorithm) ? (jwk.alg as ClientAssertionAlgorithm) : undefined);
      key = createPrivateKey({ key: jwk as never, format: 'jwk' });
    } else if (m && typeof m === 'object' && (m as KeyObject).type !== undefined) key = m as KeyObject;
    else throw new Error('not a key');
  } catch {
    throw new ClientAuthenticationError('privateKey is not a private key (PEM, private JWK or KeyObject)');
  }
  if (key.type !== 'private') throw new ClientAuthenticationError('privateKey must be a private key (got a public or secret key)');
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  let allowed: ClientAssertionAlgorithm[];
  if (type === 'rsa' || type === 'rsa-pss') {
    if ((details.modulusLength ?? 0) < 2048) throw new ClientAuthenticationError('privateKey: an RSA key must have at least 2048 bits (RFC 7518 §3.3)');
    allowed = type === 'rsa' ? ['RS256', 'PS256'] : ['PS256'];
  } else if (type === 'ec') {
    const curve: Record<string, ClientAssertionAlgorithm> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };
    const a = curve[details.namedCurve ?? ''];
    if (!a) throw new ClientAuthenticationError(`unsupported EC curve ${details.namedCurve ?? '?'}`);
    allowed = [a];
  } else if (type === 'ed25519') allowed = ['EdDSA'];
  else throw new ClientAuthenticationError(`unsupported key type ${type ?? '?'}`);
  const chosen = alg ?? allowed[0];
  if (!allowed.includes(chosen)) throw new ClientAuthenticationError(`algorithm ${chosen} does not fit a ${type} key (use ${allowed.join(' or ')})`);
  return { key, alg: chosen, kid };
}

/** RFC 6749 §2.3.1 / Appendix B: `application/x-www-form-urlencoded` encoding of one value (WHATWG URL serializer). */
export function formEncode(v: string): string {
  return new URLSearchParams([['', v]]).toString().slice(1);
}
