import { createKeyPool, KEY_POOL_ENV } from '../fixtures/key-pool';
import { processWatchdog } from './watchdog';

// In band (npm test), the tests run in this very process, so the watchdog started here covers the whole run,
// module loading between files included. Test processes inherit the pool directory through the environment.
export default async function globalSetup(): Promise<void> {
  processWatchdog().note('global setup');
  process.env[KEY_POOL_ENV] = await createKeyPool();
}
