import { KEY_POOL_ENV, removeKeyPool } from '../fixtures/key-pool';

export default async function globalTeardown(): Promise<void> {
  removeKeyPool(process.env[KEY_POOL_ENV]);
}
