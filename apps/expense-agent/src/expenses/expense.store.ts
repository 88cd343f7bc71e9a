import { ConflictException, Injectable, NotFoundException } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Expense, SubmitExpenseInput } from './expense';

/**
 * In-memory expense store. Bounded: past {@link ExpenseStore.MAX_EXPENSES} entries the oldest is dropped, so a
 * client cannot grow the process without limit.
 */
@Injectable()
export class ExpenseStore {
  /** Most expenses kept in memory. */
  static readonly MAX_EXPENSES = 10_000;
  private readonly expenses = new Map<string, Expense>();

  /** Stores a new `submitted` expense on behalf of `clientId`. */
  submit(input: SubmitExpenseInput, clientId: string): Expense {
    const e: Expense = { id: randomUUID(), ...input, status: 'submitted', submittedBy: clientId, submittedAt: new Date().toISOString() };
    this.expenses.set(e.id, e);
    if (this.expenses.size > ExpenseStore.MAX_EXPENSES) this.expenses.delete(this.expenses.keys().next().value as string);
    return { ...e };
  }

  /** Every expense, oldest first. */
  list(): Expense[] {
    return [...this.expenses.values()].map((e) => ({ ...e }));
  }

  /** @throws NotFoundException (404) for an unknown id. */
  get(id: string): Expense {
    const e = this.expenses.get(id);
    if (!e) throw new NotFoundException('expense not found');
    return { ...e };
  }

  /**
   * Approves a submitted expense on behalf of `clientId`.
   * @throws NotFoundException (404) for an unknown id; ConflictException (409) when already approved.
   */
  approve(id: string, clientId: string): Expense {
    const e = this.expenses.get(id);
    if (!e) throw new NotFoundException('expense not found');
    if (e.status === 'approved') throw new ConflictException('expense is already approved');
    Object.assign(e, { status: 'approved', approvedBy: clientId, approvedAt: new Date().toISOString() });
    return { ...e };
  }
}
