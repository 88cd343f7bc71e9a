export interface Watchdog {
  note(label: string): void;
  stop(): Promise<number>;
}
export function startWatchdog(o: { timeoutMs: number; beatMs?: number }): Watchdog;
export function processWatchdog(): Watchdog;
export function stopProcessWatchdog(): Promise<void>;
