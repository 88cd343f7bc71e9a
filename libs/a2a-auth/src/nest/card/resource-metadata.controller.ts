import { Controller, Get, Headers, Inject, NotFoundException, Req, Res, UseGuards } from '@nestjs/common';
import { A2A_AUTH_RESOLVED_OPTIONS } from '../constants';
import { Public } from '../decorators/public.decorator';
import type { ResolvedOptions } from '../../core/options';
import type { HttpRequestLike } from '../http/request-info';
import { AgentCardService } from './card.service';
import { CardThrottlerGuard } from './card-throttler.guard';
import { etagMatches, sendRaw } from '../http/http-response';

/**
 * RFC 9728 §3 protected resource metadata at `/.well-known/oauth-protected-resource`, plus the resource's
 * path appended for a resource identifier that has one (RFC 9728 §3.1; paths of up to 4 segments). Public, throttled with the card.
 * Any other path under it is 404.
 */
@Public()
@UseGuards(CardThrottlerGuard)
@Controller()
export class ResourceMetadataController {
  private readonly resourcePath: string;

  constructor(
    private readonly cards: AgentCardService,
    @Inject(A2A_AUTH_RESOLVED_OPTIONS) private readonly opts: ResolvedOptions,
  ) {
    const p = opts.resource ? new URL(opts.resource).pathname : '/';
    this.resourcePath = p === '/' ? '' : p.replace(/\/$/, '');
  }

  // Explicit segments instead of a wildcard: express 5 and fastify spell wildcards differently.
  @Get([
    '.well-known/oauth-protected-resource',
    '.well-known/oauth-protected-resource/:a',
    '.well-known/oauth-protected-resource/:a/:b',
    '.well-known/oauth-protected-resource/:a/:b/:c',
    '.well-known/oauth-protected-resource/:a/:b/:c/:d',
  ])
  metadata(@Req() req: HttpRequestLike, @Res() res: unknown, @Headers('if-none-match') inm?: string): void {
    const url = (req.originalUrl ?? req.url ?? req.raw?.url ?? '').split('?')[0];
    const suffix = url.replace(/^.*?\/\.well-known\/oauth-protected-resource/, '').replace(/\/$/, '');
    if (suffix !== '' && suffix !== this.resourcePath) throw new NotFoundException();
    const doc = this.cards.resourceMetadata();
    if (!doc) throw new NotFoundException();
    const status = etagMatches(inm, doc.etag) ? 304 : 200;
    sendRaw(
      res,
      status,
      {
        'Content-Type': 'application/json',
        'Cache-Control': `public, max-age=${this.opts.card?.cacheMaxAge ?? 300}`,
        ETag: doc.etag,
        'Last-Modified': doc.lastModified,
        'Access-Control-Allow-Origin': '*',
      },
      status === 304 ? undefined : doc.body,
    );
  }
}
