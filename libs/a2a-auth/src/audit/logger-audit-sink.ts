import { Logger } from '@nestjs/common';
import type { AuditSink, AuthAuditEvent } from './audit-event';

/**
 * Default {@link AuditSink}: one JSON line per event through the Nest `Logger` (context `A2AAuthAudit`).
 * Successes at `log`; failures at `warn`, at most `failuresPerSecond` lines per second, after which
 * a single summary line reports how many were suppressed (a flood of bad requests cannot flood the logs).
 */
export class LoggerAuditSink implements AuditSink {
  private readonly logger = new Logger('A2AAuthAudit');
  private windowStart = 0;
  private inWindow = 0;
  private suppressed = 0;

  /**
   * @param wantsSuccesses log successes too. Default true.
   * @param failuresPerSecond failure lines per second before suppression. Default 20.
   */
  constructor(readonly wantsSuccesses = true, private readonly failuresPerSecond = 20) {}

  emit(event: AuthAuditEvent): void {
    const now = Date.now();
    if (now - this.windowStart >= 1000) {
      // Any later event (success or failure) closes the window and reports what it suppressed.
      if (this.suppressed > 0) {
        this.logger.warn(JSON.stringify({ type: 'a2a.auth.suppressed', count: this.suppressed, time: new Date(now).toISOString() }));
      }
      this.windowStart = now;
      this.inWindow = 0;
      this.suppressed = 0;
    }
    if (event.outcome === 'success') {
      this.logger.log(JSON.stringify(event));
      return;
    }
    if (this.inWindow < this.failuresPerSecond) {
      this.inWindow++;
      this.logger.warn(JSON.stringify(event));
    } else {
      this.suppressed++;
    }
  }
}
