import { Controller, Get, Inject, Req, Res, UnauthorizedException, UseGuards } from '@nestjs/common';
import { A2A_AUTH_RESOLVED_OPTIONS } from '../constants';
import type { ResolvedOptions } from '../../core/options';
import type { A2ACaller } from '../../core/caller';
import { A2AAuthGuard } from '../guard/a2a-auth.guard';
import { AgentCardService, ExtendedCardError, type ExtendedCardDocuments } from './card.service';
import { documentHeaders } from './card.controller';
import { sendRaw } from '../http/http-response';
import { sendExtendedCardFailure, sendUnsupportedOperation } from '../http/a2a-rest-error';
import { requestedA2AVersion, type HttpRequestLike } from '../http/request-info';

/**
 * The authenticated extended Agent Card at `GET /extendedAgentCard` (A2A v1.0 HTTP+JSON binding path,
 * relative to the app root). Any valid token is enough; without one: 401 with `WWW-Authenticate`.
 * The card is the caller's own ({@link AgentCardService.extendedDocumentsFor}): its `extendedOnly` skills are those its
 * scopes grant, then `card.extendedCardFor` applies; a failing callback answers HTTP 500 with the A2A `INTERNAL` body.
 * When `card.extendedCard` is off, an authenticated caller gets A2A v1.0 `UnsupportedOperationError` (§3.3.4, §13.3):
 * HTTP 400 with the HTTP+JSON error body (`application/a2a+json`, ErrorInfo reason `UNSUPPORTED_OPERATION`), as the
 * JSON-RPC `GetExtendedAgentCard` answers `-32004`. `A2A-Version: 0.3` (header, else query parameter) selects the v0.3 view.
 * `Cache-Control: private, no-store`.
 */
@UseGuards(A2AAuthGuard)
@Controller()
export class ExtendedCardController {
  constructor(
    private readonly cards: AgentCardService,
    @Inject(A2A_AUTH_RESOLVED_OPTIONS) private readonly opts: ResolvedOptions,
  ) {}

  @Get('extendedAgentCard')
  async extended(@Req() req: HttpRequestLike, @Res() res: unknown): Promise<void> {
    if (!this.opts.card?.extendedCard) return sendUnsupportedOperation(res, 'This agent serves no authenticated extended Agent Card');
    const caller = req.user as A2ACaller | undefined;
    if (!caller || !Array.isArray(caller.scopes)) throw new UnauthorizedException(); // the guard always sets one: fail closed
    const version = requestedA2AVersion(req);
    const v03 = version !== undefined && /^0\.3(\.|$)/.test(version.trim());
    let docs: ExtendedCardDocuments;
    try {
      docs = await this.cards.extendedDocumentsFor(caller);
    } catch (e) {
      if (e instanceof ExtendedCardError) return sendExtendedCardFailure(res, e.message);
      throw e;
    }
    const doc = v03 ? docs.v03 : docs.v1;
    const h = documentHeaders(doc, 0, false);
    h['Cache-Control'] = 'private, no-store';
    sendRaw(res, 200, h, doc.body);
  }
}
