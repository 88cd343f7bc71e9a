import type { Logger } from '@nestjs/common';

/**
 * Writes log lines with a per-second budget so that a flood of requests cannot flood the logs.
 * Lines past the budget are counted; the first call after the one-second window closes writes one summary line
 * `{ "type": "<summaryType>", "count": N, "time": … }` at `warn`.
 */
export class RateLimitedLog {
  private windowStart = 0;
  private inWindow = 0;
  private suppressed = 0;

  /**
   * @param logger the Nest logger to write to.
   * @param perSecond lines allowed per second (0 = none; only summaries).
   * @param summaryType `type` of the summary line.
   */
  constructor(
    private readonly logger: Logger,
    private readonly perSecond: number,
    private readonly summaryType: string,
  ) {}

  /** Closes the window if a second has passed, writing the summary of what was suppressed. */
  tick(now = Date.now()): void {
    if (now - this.windowStart < 1000) return;
    if (this.suppressed > 0) this.logger.warn(JSON.stringify({ type: this.summaryType, count: this.suppressed, time: new Date(now).toISOString() }));
    this.windowStart = now;
    this.inWindow = 0;
    this.suppressed = 0;
  }

  /** Writes `line()` at `level` if the budget allows; `line` is only built when written. */
  write(level: 'log' | 'warn', line: () => string): void {
    this.tick();
    if (this.inWindow < this.perSecond) {
      this.inWindow++;
      this.logger[level](line());
    } else {
      this.suppressed++;
    }
  }
}
