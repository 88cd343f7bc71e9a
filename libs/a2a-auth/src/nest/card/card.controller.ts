import { Controller, Get, Headers, Inject, Logger, NotFoundException, Options, Req, Res, UseGuards } from '@nestjs/common';
import { A2A_AUTH_RESOLVED_OPTIONS } from '../constants';
import { Public } from '../decorators/public.decorator';
import type { ResolvedOptions } from '../../core/options';
import { clientAddress, type HttpRequestLike } from '../http/request-info';
import { AgentCardService, type CardView, type ServedDocument } from './card.service';
import { CardThrottlerGuard } from './card-throttler.guard';
import { CARD_CORS_HEADERS, etagMatches, sendRaw } from '../http/http-response';
import { RateLimitedLog } from '../audit/rate-limited-log';

const CORS = CARD_CORS_HEADERS;

/**
 * Serves the public Agent Card at `/.well-known/agent-card.json` (and the legacy `/.well-known/agent.json`).
 *
 * - `A2A-Version: 0.3` selects the v0.3 view; otherwise the configured default (v1.0). `Vary: A2A-Version`.
 * - `Content-Type: application/json`, `Cache-Control: public, max-age=<card.cacheMaxAge>`, `ETag`, `Last-Modified`;
 *   304 on a matching `If-None-Match`.
 * - CORS `Access-Control-Allow-Origin: *` on GET, HEAD and OPTIONS (204 preflight), on these paths only.
 * - Rate-limited by {@link CardThrottlerGuard} (429 + `Retry-After`). 404 when no card is configured.
 * - Logs each request (client address, view, status) under the `A2AAgentCard` logger context, at most 20 lines per
 *   second plus a summary of what was suppressed.
 */
@Public()
@UseGuards(CardThrottlerGuard)
@Controller()
export class AgentCardController {
  private readonly requestLog = new RateLimitedLog(new Logger('A2AAgentCard'), 20, 'a2a.card.request.suppressed');

  constructor(
    private readonly cards: AgentCardService,
    @Inject(A2A_AUTH_RESOLVED_OPTIONS) private readonly opts: ResolvedOptions,
  ) {}

  @Get('.well-known/agent-card.json')
  card(@Req() req: HttpRequestLike, @Res() res: unknown, @Headers('a2a-version') version?: string, @Headers('if-none-match') inm?: string): void {
    this.respond(req, res, version, inm);
  }

  @Get('.well-known/agent.json')
  legacy(@Req() req: HttpRequestLike, @Res() res: unknown, @Headers('a2a-version') version?: string, @Headers('if-none-match') inm?: string): void {
    if (!this.opts.card?.legacyPath) throw new NotFoundException();
    this.respond(req, res, version, inm);
  }

  @Options(['.well-known/agent-card.json', '.well-known/agent.json'])
  preflight(@Req() req: HttpRequestLike, @Res() res: unknown): void {
    const path = (req.originalUrl ?? req.url ?? req.raw?.url ?? '').split('?')[0];
    if (!this.opts.card || (!this.opts.card.legacyPath && path.endsWith('/agent.json'))) throw new NotFoundException();
    sendRaw(res, 204, { ...CORS, 'Access-Control-Max-Age': '86400', Vary: 'A2A-Version' });
  }

  private respond(req: HttpRequestLike, res: unknown, version: string | undefined, inm: string | undefined): void {
    const c = this.opts.card;
    if (!c) throw new NotFoundException();
    const wantV03 = version !== undefined ? /^0\.3(\.|$)/.test(version.trim()) : c.defaultVersion === '0.3';
    const view: CardView = wantV03 ? 'v03' : 'v1';
    const doc = this.cards.document(view)!;
    const status = etagMatches(inm, doc.etag) ? 304 : 200;
    this.requestLog.write('log', () =>
      JSON.stringify({
        type: 'a2a.card.request',
        peer: clientAddress(req, this.opts.throttle.trustedProxyHops),
        view,
        status,
        userAgent: str(req.headers['user-agent']),
        time: new Date().toISOString(),
      }),
    );
    sendRaw(res, status, documentHeaders(doc, c.cacheMaxAge, true), status === 304 ? undefined : doc.body);
  }
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v.slice(0, 200) : undefined;
}

/** Headers for a served document (card or metadata). */
export function documentHeaders(doc: ServedDocument, maxAge: number, cors: boolean): Record<string, string> {
  return {
    'Content-Type': 'application/json',
    'Cache-Control': `public, max-age=${maxAge}`,
    ETag: doc.etag,
    'Last-Modified': doc.lastModified,
    Vary: 'A2A-Version',
    ...(cors ? CORS : {}),
  };
}
