import { Logger } from '@nestjs/common';
import { RateLimitedLog } from '../libs/a2a-auth/src/nest/audit/rate-limited-log';

describe('RateLimitedLog (card and audit log flood protection)', () => {
  it('writes at most N lines per second, then one summary with the suppressed count', () => {
    const lines: Array<[string, string]> = [];
    const logger = { log: (m: string) => lines.push(['log', m]), warn: (m: string) => lines.push(['warn', m]) } as unknown as Logger;
    const rl = new RateLimitedLog(logger, 5, 'x.suppressed');
    let built = 0;
    for (let i = 0; i < 300; i++) rl.write('warn', () => `line ${++built}`);
    expect(lines).toEqual([1, 2, 3, 4, 5].map((n) => ['warn', `line ${n}`]));
    expect(built).toBe(5); // suppressed lines are never even built
    const later = Date.now() + 1000;
    rl.tick(later);
    expect(lines).toHaveLength(6);
    expect(JSON.parse(lines[5][1])).toEqual({ type: 'x.suppressed', count: 295, time: new Date(later).toISOString() });
    rl.tick(later + 1000);
    expect(lines).toHaveLength(6); // nothing suppressed in the last window: no summary
  });
});
