import { Module, type DynamicModule } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { A2AAuthModule } from 'nestjs-a2a-auth';
import { authOptionsFromConfig } from './config';
import { ExpensesController } from './expenses/expenses.controller';
import { ExpenseStore } from './expenses/expense.store';
import { ExpenseA2AModule } from './a2a/expense-a2a.module';

/** Options of {@link AppModule.forRoot}. */
export interface AppModuleOptions {
  /**
   * Configuration values that take precedence over `process.env` (e.g. the embedded dev server's issuer, chosen
   * port and public URL, filled in by `bootstrap()`).
   */
  values?: Record<string, string | undefined>;
  /** Ignore `process.env` entirely and read only `values` (hermetic tests). Default false. */
  skipProcessEnv?: boolean;
}

/**
 * The Expense Reimbursement Agent. Configuration comes from @nestjs/config (environment variables, see `config.ts`),
 * turned into the library options by `A2AAuthModule.forRootAsync`.
 */
@Module({})
export class AppModule {
  /** Builds the root module. */
  static forRoot(o: AppModuleOptions = {}): DynamicModule {
    const values = Object.fromEntries(Object.entries(o.values ?? {}).filter(([, v]) => v !== undefined));
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, skipProcessEnv: o.skipProcessEnv ?? false, load: [() => values] }),
        A2AAuthModule.forRootAsync({ inject: [ConfigService], useFactory: authOptionsFromConfig }),
        ExpenseA2AModule,
      ],
      controllers: [ExpensesController],
      providers: [ExpenseStore],
    };
  }
}
