import type { ConfigService } from '@nestjs/config';
import { HumanApprovalService } from 'nestjs-a2a-auth';

/** Environment variables of the sample's human approval (OpenID Connect CIBA); see README.md "Human approval". */
export const APPROVAL_ENV = {
  /** The agent's client id for the CIBA grant (poll mode). Unset: human approval is off. */
  clientId: 'A2A_APPROVAL_CLIENT_ID',
  /** Its secret (`client_secret_basic`); required with `A2A_APPROVAL_CLIENT_ID`. */
  clientSecret: 'A2A_APPROVAL_CLIENT_SECRET',
  /** `backchannel_authentication_endpoint`. Default: discovered from `A2A_ISSUER` (first issuer). */
  backchannelUrl: 'A2A_APPROVAL_BACKCHANNEL_URL',
  /** Expenses with an amount above this need the submitting user's approval. Unset: only when a message asks for it. */
  threshold: 'A2A_APPROVAL_THRESHOLD',
  /** `login_hint` when the message names none (`metadata.loginHint`). Unset: such a message fails. */
  loginHint: 'A2A_APPROVAL_LOGIN_HINT',
  /** Upper bound of one wait, milliseconds. Default 120000. */
  timeoutMs: 'A2A_APPROVAL_TIMEOUT_MS',
  /** Approvals waiting at the same time for one task owner (`maxPendingPerOwner`). Default 10. */
  maxPendingPerOwner: 'A2A_APPROVAL_MAX_PENDING_PER_OWNER',
} as const;

/** Injection token of {@link ExpenseApproval}. */
export const EXPENSE_APPROVAL = Symbol('EXPENSE_APPROVAL');

/** The sample's approval settings. */
export interface ExpenseApproval {
  /** The library's service; `undefined` when `A2A_APPROVAL_CLIENT_ID` is unset. */
  service?: HumanApprovalService;
  /** Amount above which approval is needed; `undefined`: only on request (`metadata.requireApproval: true`). */
  threshold?: number;
  /** Default `login_hint`. */
  loginHint?: string;
}

/**
 * Reads {@link APPROVAL_ENV} through `ConfigService`.
 * @throws Error naming the variable when one is invalid.
 */
export function expenseApprovalFromConfig(config: ConfigService): ExpenseApproval {
  const get = (k: string) => {
    const v = config.get<string | number | undefined>(k);
    return v === undefined || v === null || v === '' ? undefined : String(v);
  };
  const num = (k: string): number | undefined => {
    const v = get(k);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${k} must be a non-negative number, got ${JSON.stringify(v)}`);
    return n;
  };
  const threshold = num(APPROVAL_ENV.threshold);
  const timeoutMs = num(APPROVAL_ENV.timeoutMs) ?? 120_000;
  const maxPendingPerOwner = num(APPROVAL_ENV.maxPendingPerOwner);
  const loginHint = get(APPROVAL_ENV.loginHint);
  const clientId = get(APPROVAL_ENV.clientId);
  if (!clientId) return { threshold, loginHint };
  const clientSecret = get(APPROVAL_ENV.clientSecret);
  if (!clientSecret) throw new Error(`${APPROVAL_ENV.clientSecret} is required with ${APPROVAL_ENV.clientId}`);
  const issuer = get('A2A_ISSUER')?.split(',')[0]?.trim();
  const backchannel = get(APPROVAL_ENV.backchannelUrl);
  const tokenUrl = get('A2A_TOKEN_URL');
  const service = new HumanApprovalService({
    ciba: {
      clientId,
      clientSecret,
      ...(backchannel && tokenUrl ? { backchannelAuthenticationEndpoint: backchannel, tokenUrl } : { issuer, backchannelAuthenticationEndpoint: backchannel }),
    },
    timeoutMs,
    ...(maxPendingPerOwner !== undefined ? { maxPendingPerOwner } : {}),
  });
  return { service, threshold, loginHint };
}
