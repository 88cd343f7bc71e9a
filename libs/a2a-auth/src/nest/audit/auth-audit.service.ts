import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { A2A_AUDIT_SINK } from '../constants';
import type { A2ACaller } from '../../core/caller';
import { actorsOf, type A2AActor } from '../../core/delegation';
import type { AuthError } from '../../core/errors';
import type { VerifyAttempt } from '../../core/verifier';
import { clientAddress, routeOf, type HttpRequestLike } from '../http/request-info';
import type { AuditSink, AuthAuditEvent } from '../../core/audit-event';

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v.slice(0, 256) : undefined;
}

/** Route facts for an audit event. */
export interface AuditRoute {
  skillId?: string;
  requiredScopes?: readonly string[];
}

/**
 * Builds audit events and hands them to the {@link AuditSink}. Success events are built only when the
 * sink wants them. Sink errors are swallowed: auditing never changes the HTTP outcome.
 */
@Injectable()
export class AuthAuditService {
  constructor(
    @Inject(A2A_AUDIT_SINK) private readonly sink: AuditSink,
    @Inject('A2A_TRUSTED_HOPS') private readonly hops: number,
  ) {}

  /** Records a successful decision. */
  success(req: HttpRequestLike, caller: A2ACaller, attempt: VerifyAttempt, route: AuditRoute): void {
    if (!this.sink.wantsSuccesses) return;
    const jti = str(caller.claims.jti);
    this.safeEmit({
      type: 'a2a.auth',
      outcome: 'success',
      reason: 'ok',
      status: 200,
      clientId: caller.clientId,
      subject: caller.subject,
      issuer: caller.issuer,
      actors: auditActors(caller.actors),
      tokenId: jti ? hash22(jti) : attempt.hash?.slice(0, 22),
      kid: caller.keyId,
      verified: true,
      method: req.method,
      route: routeOf(req),
      skillId: route.skillId,
      requiredScopes: route.requiredScopes,
      grantedScopes: caller.scopes,
      peer: clientAddress(req, this.hops),
      time: new Date().toISOString(),
    });
  }

  /** Records a failed decision. Identity fields come from the caller if verified, else from the unverified token. */
  failure(req: HttpRequestLike, err: AuthError, attempt: VerifyAttempt, route: AuditRoute, caller?: A2ACaller): void {
    const p = caller?.claims ?? attempt.decoded?.payload;
    const jti = str(p?.jti);
    this.safeEmit({
      type: 'a2a.auth',
      outcome: 'failure',
      reason: err.reason,
      status: err.status,
      clientId: caller?.clientId ?? str(p?.client_id) ?? str(p?.azp),
      subject: str(p?.sub),
      issuer: str(p?.iss),
      actors: auditActors(caller ? caller.actors : unverifiedActors(p)),
      tokenId: jti ? hash22(jti) : attempt.hash?.slice(0, 22),
      kid: str(attempt.decoded?.header.kid) ?? caller?.keyId,
      verified: caller !== undefined,
      method: req.method,
      route: routeOf(req),
      skillId: route.skillId,
      requiredScopes: route.requiredScopes,
      grantedScopes: caller?.scopes,
      peer: clientAddress(req, this.hops),
      time: new Date().toISOString(),
      detail: err.message,
    });
  }

  private safeEmit(e: AuthAuditEvent): void {
    try {
      this.sink.emit(e);
    } catch {
      /* auditing must never change the outcome */
    }
  }
}

function auditActors(actors: readonly A2AActor[] | undefined): AuthAuditEvent['actors'] {
  if (!actors?.length) return undefined;
  return actors.map((a) => ({ clientId: str(a.client_id), subject: str(a.sub) }));
}

// The chain of a refused token, as far as it is well formed; a malformed act claim records none.
function unverifiedActors(p: Readonly<Record<string, unknown>> | undefined): readonly A2AActor[] | undefined {
  if (!p) return undefined;
  try {
    return actorsOf(p);
  } catch {
    return undefined;
  }
}

function hash22(v: string): string {
  return createHash('sha256').update(v).digest('base64url').slice(0, 22);
}
