import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { A2ACaller, AgentSkill, RequireScopes } from 'nestjs-a2a-auth';
import { parseSubmitExpense, type Expense } from './expense';
import { ExpenseStore } from './expense.store';

/** Who the verified caller is, for the record: its `client_id` (RFC 9068), else its `sub`. */
function callerId(caller: A2ACaller): string {
  return caller.clientId ?? caller.subject ?? 'unknown';
}

/**
 * The Expense Reimbursement Agent's skills over plain HTTP. Every route needs a bearer token (the library's global
 * guard); the scopes below are enforced by it and advertised in the Agent Card from the same decorators.
 */
@Controller('expenses')
export class ExpensesController {
  constructor(private readonly store: ExpenseStore) {}

  /** `POST /expenses` → 201 with the stored expense; 400 for a bad body; 403 without `expense:submit`. */
  @AgentSkill({
    id: 'submit-expense',
    name: 'Submit an expense',
    description: 'Submits an expense claim (amount, ISO 4217 currency, description) for reimbursement.',
    tags: ['expenses', 'finance', 'reimbursement'],
    examples: ['Submit a 42.50 EUR taxi ride to the airport', '{"amount": 42.5, "currency": "EUR", "description": "Taxi to the airport"}'],
  })
  @RequireScopes('expense:submit')
  @Post()
  submit(@Body() body: unknown, @A2ACaller() caller: A2ACaller): Expense {
    return this.store.submit(parseSubmitExpense(body), callerId(caller));
  }

  /** `POST /expenses/:id/approve` → 200 with the approved expense; 404 unknown id; 409 already approved. */
  @AgentSkill({
    id: 'approve-expense',
    name: 'Approve an expense',
    description: 'Approves a submitted expense claim by its id.',
    tags: ['expenses', 'finance', 'approval'],
    examples: ['Approve expense 6f1c0b7e-…'],
  })
  @RequireScopes('expense:approve')
  @HttpCode(200)
  @Post(':id/approve')
  approve(@Param('id') id: string, @A2ACaller() caller: A2ACaller): Expense {
    return this.store.approve(id, callerId(caller));
  }

  /** `GET /expenses` → 200 `{ expenses: [...] }`. */
  @AgentSkill({
    id: 'list-expenses',
    name: 'List and read expenses',
    description: 'Lists every expense claim with its status, or reads one by id (GET /expenses/:id).',
    tags: ['expenses', 'finance'],
    examples: ['Which expenses are waiting for approval?'],
  })
  @RequireScopes('expense:read')
  @Get()
  list(): { expenses: Expense[] } {
    return { expenses: this.store.list() };
  }

  /** `GET /expenses/:id` → 200 with the expense; 404 unknown id. */
  @RequireScopes('expense:read')
  @Get(':id')
  get(@Param('id') id: string): Expense {
    return this.store.get(id);
  }
}
