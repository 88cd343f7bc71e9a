import { Controller, Get, Inject, Req, Res, UseGuards } from '@nestjs/common';
import { A2A_AUTH_RESOLVED_OPTIONS } from '../constants';
import type { ResolvedOptions } from '../../core/options';
import { A2AAuthGuard } from '../guard/a2a-auth.guard';
import { AgentCardService } from './card.service';
import { documentHeaders } from './card.controller';
import { sendRaw } from '../http/http-response';
import { sendUnsupportedOperation } from '../http/a2a-rest-error';
import { requestedA2AVersion, type HttpRequestLike } from '../http/request-info';

/**
 * The authenticated extended Agent Card at `GET /extendedAgentCard` (A2A v1.0 HTTP+JSON binding path,
 * relative to the app root). Any valid token is enough; without one: 401 with `WWW-Authenticate`.
 * When `card.extendedCard` is off, an authenticated caller gets A2A v1.0 `UnsupportedOperationError` (§3.3.4, §13.3):
 * HTTP 400 with the HTTP+JSON error body (`application/a2a+json`, ErrorInfo reason `UNSUPPORTED_OPERATION`), as the
 * JSON-RPC `GetExtendedAgentCard` answers `-32004`. `A2A-Version: 0.3` (header, else query parameter) selects the v0.3 view. `Cache-Control: private`.
 */
@UseGuards(A2AAuthGuard)
@Controller()
export class ExtendedCardController {
  constructor(
    private readonly cards: AgentCardService,
    @Inject(A2A_AUTH_RESOLVED_OPTIONS) private readonly opts: ResolvedOptions,
  ) {}

  @Get('extendedAgentCard')
  extended(@Req() req: HttpRequestLike, @Res() res: unknown): void {
    if (!this.opts.card?.extendedCard) return sendUnsupportedOperation(res, 'This agent serves no authenticated extended Agent Card');
    const version = requestedA2AVersion(req);
    const v03 = version !== undefined && /^0\.3(\.|$)/.test(version.trim());
    const doc = this.cards.document(v03 ? 'v03-extended' : 'v1-extended')!;
    const h = documentHeaders(doc, 0, false);
    h['Cache-Control'] = 'private, no-store';
    sendRaw(res, 200, h, doc.body);
  }
}
