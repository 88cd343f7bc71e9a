import { KEY_POOL_ENV, removeKeyPool } from '../fixtures/key-pool';
import { stopProcessWatchdog } from './watchdog';

export default async function globalTeardown(): Promise<void> {
  removeKeyPool(process.env[KEY_POOL_ENV]);
  await stopProcessWatchdog();
}
