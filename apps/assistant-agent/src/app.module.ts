import { Module, type DynamicModule } from '@nestjs/common';
import { A2AAuthModule, A2AHttpTransport, A2ASkillAuthorizer, AgentCardService, createA2ARequestHandler } from 'nestjs-a2a-auth';
import { AssistantJsonRpcController, AssistantRestController } from './assistant-a2a.controllers';
import { ASSISTANT_SETTINGS, AssistantExecutor } from './assistant.executor';
import { assistantAuthOptions, type AssistantSettings } from './config';

/**
 * The Expense Assistant Agent: `A2AAuthModule` (guard, card, RFC 9728 metadata) for its own audience, and the A2A
 * bindings of the official `@a2a-js/sdk` served from Nest controllers, so the guard protects them.
 */
@Module({})
export class AssistantAppModule {
  /** Builds the root module from the settings. */
  static forRoot(settings: AssistantSettings): DynamicModule {
    return {
      module: AssistantAppModule,
      imports: [A2AAuthModule.forRoot(assistantAuthOptions(settings))],
      controllers: [AssistantJsonRpcController, AssistantRestController],
      providers: [
        { provide: ASSISTANT_SETTINGS, useValue: settings },
        A2ASkillAuthorizer,
        AssistantExecutor,
        {
          provide: A2AHttpTransport,
          // Built on first use: the cards exist only after AgentCardService.onModuleInit.
          useFactory: (cards: AgentCardService, authorizer: A2ASkillAuthorizer, executor: AssistantExecutor) =>
            new A2AHttpTransport(() => createA2ARequestHandler(cards, executor), authorizer),
          inject: [AgentCardService, A2ASkillAuthorizer, AssistantExecutor],
        },
      ],
    };
  }
}
