import { extractBearerToken } from '../../core/bearer';
import type { VerificationContext } from '../../core/verifier';
import { countAuthorizationHeaders, socketOf, type HttpRequestLike } from './request-info';

const NO_CONTEXT: VerificationContext = Object.freeze({});

/**
 * The bearer token of an express or fastify request (RFC 6750 §2.1, and §2.3 when `allowQueryToken`), with the same
 * rules for every entry point (the guard and the Passport strategy).
 * @throws AuthError as {@link extractBearerToken}.
 */
export function bearerTokenOf(req: HttpRequestLike, o: { allowQueryToken: boolean; maxTokenLength: number }): string {
  return extractBearerToken(
    {
      authorization: req.headers?.authorization,
      authorizationCount: req.headers ? countAuthorizationHeaders(req) : 0,
      // Express 5 parses the query string on every `req.query` read; without a `?` there is none.
      queryToken: req.url === undefined || req.url.includes('?') ? (req.query?.access_token as string | string[] | undefined) : undefined,
    },
    o,
  );
}

/**
 * The request facts the verifier needs for sender-constrained tokens. Without mTLS there are none, and no object is
 * allocated on the hot path.
 * @param mtls whether certificate-bound tokens are required (the `mtls` option).
 */
export function verificationContextOf(req: HttpRequestLike, mtls: boolean): VerificationContext {
  if (!mtls) return NO_CONTEXT;
  return {
    clientCertificate: () => {
      const sock = socketOf(req);
      if (!sock?.authorized) return undefined;
      const cert = sock.getPeerCertificate?.(false) as { raw?: Buffer } | undefined;
      return cert?.raw;
    },
  };
}
