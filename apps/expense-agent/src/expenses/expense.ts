import { BadRequestException } from '@nestjs/common';

/** An expense claim. Amounts are in the currency's major unit (e.g. 42.5 EUR). */
export interface Expense {
  /** Server-assigned id (UUID). */
  id: string;
  /** Positive amount, at most 2 decimals, at most 1,000,000. */
  amount: number;
  /** ISO 4217 code, e.g. `EUR`. */
  currency: string;
  /** What the money was spent on (1–500 characters). */
  description: string;
  /** `submitted`, then `approved`. */
  status: 'submitted' | 'approved';
  /** OAuth 2.0 client id of the verified caller that submitted it (`client_id`, else `sub`). */
  submittedBy: string;
  /** ISO 8601 time of submission. */
  submittedAt: string;
  /** Client id of the verified caller that approved it. */
  approvedBy?: string;
  /** ISO 8601 time of approval. */
  approvedAt?: string;
}

/** Body of `POST /expenses`. */
export interface SubmitExpenseInput {
  amount: number;
  currency: string;
  description: string;
}

const MAX_AMOUNT = 1_000_000;
const MAX_DESCRIPTION = 500;
const ALLOWED = new Set(['amount', 'currency', 'description']);

/**
 * Validates the body of `POST /expenses`.
 * @throws BadRequestException (400) listing every problem: not a JSON object, unknown properties, bad
 *   `amount`/`currency`/`description`.
 */
export function parseSubmitExpense(body: unknown): SubmitExpenseInput {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequestException(['body must be a JSON object with amount, currency and description']);
  }
  const b = body as Record<string, unknown>;
  const problems: string[] = [];
  for (const k of Object.keys(b)) if (!ALLOWED.has(k)) problems.push(`property ${JSON.stringify(k.slice(0, 50))} is not allowed`);
  const { amount, currency, description } = b;
  if (
    typeof amount !== 'number' ||
    !Number.isFinite(amount) ||
    amount <= 0 ||
    amount > MAX_AMOUNT ||
    Math.abs(amount * 100 - Math.round(amount * 100)) > 1e-6
  ) {
    problems.push(`amount must be a positive number of at most ${MAX_AMOUNT} with at most 2 decimals`);
  }
  if (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency)) problems.push('currency must be an ISO 4217 code such as "EUR"');
  if (typeof description !== 'string' || description.trim() === '' || description.length > MAX_DESCRIPTION) {
    problems.push(`description must be a non-empty string of at most ${MAX_DESCRIPTION} characters`);
  }
  if (problems.length) throw new BadRequestException(problems);
  return { amount: amount as number, currency: currency as string, description: (description as string).trim() };
}
