import { Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { A2AHttpTransport, A2AInTaskAuthorization, A2ASkillAuthorizer, AgentCardService, createA2ARequestHandler } from 'nestjs-a2a-auth';
import { A2AJsonRpcController, A2ARestController } from './a2a.controllers';
import { ExpenseA2AExecutor } from './expense-a2a.executor';
import { EXPENSE_APPROVAL, expenseApprovalFromConfig } from './expense-approval';

/**
 * The Expense agent's A2A bindings (official `@a2a-js/sdk`, protocol v1.0) served from Nest controllers:
 * JSON-RPC at `POST /a2a/jsonrpc`, HTTP+JSON at the root. Import it next to `A2AAuthModule` (which provides the
 * guard, the cards and the skill registry); the executor uses the app's `ExpenseStore`.
 */
@Module({
  controllers: [A2AJsonRpcController, A2ARestController],
  providers: [
    A2ASkillAuthorizer,
    A2AInTaskAuthorization,
    ExpenseA2AExecutor,
    // Human approval through OpenID Connect CIBA (off unless A2A_APPROVAL_CLIENT_ID is set; bootstrap() sets it for the dev server).
    { provide: EXPENSE_APPROVAL, useFactory: expenseApprovalFromConfig, inject: [ConfigService] },
    {
      provide: A2AHttpTransport,
      // The SDK handler is built on first use: the cards exist only after AgentCardService.onModuleInit.
      useFactory: (cards: AgentCardService, authorizer: A2ASkillAuthorizer, executor: ExpenseA2AExecutor) =>
        new A2AHttpTransport(() => createA2ARequestHandler(cards, executor), authorizer),
      inject: [AgentCardService, A2ASkillAuthorizer, ExpenseA2AExecutor],
    },
  ],
  exports: [A2AHttpTransport],
})
export class ExpenseA2AModule {}
