import { actorsOf, type A2AActor } from './delegation';

/**
 * The verified caller, attached to the request as `request.user` and readable with `@A2ACaller()`.
 */
export interface A2ACaller {
  /** OAuth 2.0 client id: the `client_id` claim (RFC 9068 §2.2), else `azp` (OIDC), else `undefined`. */
  readonly clientId?: string;
  /** The `sub` claim (RFC 7519 §4.1.2). For client-credentials tokens this is usually the client id. */
  readonly subject?: string;
  /** The `iss` claim, equal to one of the configured issuers. */
  readonly issuer: string;
  /** Granted scopes, read from the configured scope claims. */
  readonly scopes: readonly string[];
  /** All verified claims of the access token (read-only). */
  readonly claims: Readonly<Record<string, unknown>>;
  /** Token expiry, `exp`, in seconds since the epoch. */
  readonly expiresAt: number;
  /** The key id (`kid`) that verified the token, if the token named one. */
  readonly keyId?: string;
  /**
   * The delegation chain from the `act` claim (RFC 8693 §4.1), nearest actor first: `actors[0]` is the party acting
   * now, each later one acted before it. Empty for a token without `act`. Frozen.
   */
  readonly actors: readonly A2AActor[];
}

/**
 * Builds an {@link A2ACaller} from verified claims.
 * @throws AuthError `malformed_token` for an `act` claim that is not a chain of actors ({@link actorsOf}).
 */
export function callerFromClaims(claims: Record<string, unknown>, scopes: string[], keyId?: string): A2ACaller {
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return Object.freeze({
    clientId: str(claims.client_id) ?? str(claims.azp),
    subject: str(claims.sub),
    issuer: claims.iss as string,
    scopes: Object.freeze(scopes),
    claims: Object.freeze({ ...claims }),
    expiresAt: claims.exp as number,
    keyId,
    actors: actorsOf(claims),
  });
}
