import { Logger } from '@nestjs/common';
import type { AuditSink, AuthAuditEvent } from '../../core/audit-event';
import { RateLimitedLog } from './rate-limited-log';

/**
 * Default {@link AuditSink}: one JSON line per event through the Nest `Logger` (context `A2AAuthAudit`).
 * Successes at `log`; failures at `warn`, at most `failuresPerSecond` lines per second, after which
 * a single summary line (`a2a.auth.suppressed`) reports how many were suppressed (a flood of bad requests cannot
 * flood the logs).
 */
export class LoggerAuditSink implements AuditSink {
  private readonly logger = new Logger('A2AAuthAudit');
  private readonly failures: RateLimitedLog;

  /**
   * @param wantsSuccesses log successes too. Default true.
   * @param failuresPerSecond failure lines per second before suppression. Default 20.
   */
  constructor(
    readonly wantsSuccesses = true,
    failuresPerSecond = 20,
  ) {
    this.failures = new RateLimitedLog(this.logger, failuresPerSecond, 'a2a.auth.suppressed');
  }

  emit(event: AuthAuditEvent): void {
    if (event.outcome === 'success') {
      this.failures.tick(); // any later event reports what the last window suppressed
      this.logger.log(JSON.stringify(event));
      return;
    }
    this.failures.write('warn', () => JSON.stringify(event));
  }
}
