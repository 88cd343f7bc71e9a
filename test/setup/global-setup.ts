import { createKeyPool, KEY_POOL_ENV } from '../fixtures/key-pool';

// Test processes inherit the pool directory through the environment.
export default async function globalSetup(): Promise<void> {
  process.env[KEY_POOL_ENV] = await createKeyPool();
}
