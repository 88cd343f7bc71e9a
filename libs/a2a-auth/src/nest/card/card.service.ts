import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { A2A_AUTH_RESOLVED_OPTIONS } from '../constants';
import type { ResolvedOptions } from '../../core/options';
import type { AgentCardJson } from '../../core/card/agent-card.types';
import { buildAgentCard, toV03Card, type AgentCardV03Json } from '../../core/card/card-builder';
import { signAgentCard } from '../../core/card/card-signer';
import { buildProtectedResourceMetadata, type ProtectedResourceMetadata } from '../../core/card/resource-metadata';
import { SkillRegistry } from './skill-registry';

/** Moves `iconUrl` after `signatures`, the SDK's `toJSON` key order, so the served text matches it too (JCS ignores order). */
function iconLast<T extends object>(card: T): T {
  const { iconUrl, ...rest } = card as { iconUrl?: string };
  return (iconUrl === undefined ? card : { ...rest, iconUrl }) as T;
}

/** A document ready to serve: serialized once, with its validators. */
export interface ServedDocument {
  /** The JSON value. */
  json: unknown;
  /** UTF-8 JSON bytes. */
  body: Buffer;
  /** Strong ETag (quoted, RFC 9110 §8.8.3). */
  etag: string;
  /** `Last-Modified` (RFC 9110 §8.8.2): the boot time. */
  lastModified: string;
}

/** The card views the service holds. */
export type CardView = 'v1' | 'v03' | 'v1-extended' | 'v03-extended';

/**
 * Builds the Agent Card views and the RFC 9728 metadata once at startup (after skill discovery),
 * signs them when configured, and serves them from memory.
 */
@Injectable()
export class AgentCardService implements OnModuleInit {
  private docs = new Map<CardView, ServedDocument>();
  private metadata?: ServedDocument;
  private readonly bootTime = new Date(Math.floor(Date.now() / 1000) * 1000).toUTCString();

  constructor(
    @Inject(A2A_AUTH_RESOLVED_OPTIONS) private readonly opts: ResolvedOptions,
    private readonly skills: SkillRegistry,
  ) {}

  async onModuleInit(): Promise<void> {
    const skills = this.skills.all(); // runs the boot checks even without a card
    const o = this.opts;
    if (o.resource)
      this.metadata = this.serve(
        buildProtectedResourceMetadata({
          resource: o.resource!,
          issuers: o.issuerNames,
          scopes: Object.keys(o.scopes),
          resourceName: o.card?.name,
          documentationUrl: o.card?.documentationUrl,
          allowQueryToken: o.allowQueryToken,
          certificateBound: o.mtls?.requireBoundTokens,
          dpopAlgorithms: (o.dpop?.mode ?? 'off') === 'off' ? undefined : o.dpop.algorithms,
          dpopRequired: o.dpop?.mode === 'required',
        }),
      );
    if (!o.card) return;
    if (o.card.interfaces.length === 0) {
      new Logger('A2AAgentCard').warn('card.interfaces is empty: the Agent Card lists no A2A interface, so A2A clients cannot call this agent');
    }
    const base = buildAgentCard(o, skills, false);
    const views: Array<[CardView, object]> = [
      ['v1', base],
      ['v03', toV03Card(base, o.card.url)],
    ];
    if (o.card.extendedCard) {
      const ext = buildAgentCard(o, skills, true);
      views.push(['v1-extended', ext], ['v03-extended', toV03Card(ext, o.card.url)]);
    }
    for (const [view, json] of views) {
      const signed = o.card.signing ? iconLast(await signAgentCard(json, o.card.signing)) : json;
      this.docs.set(view, this.serve(signed));
    }
  }

  /** A card view, or `undefined` when no card (or no extended card) is configured. */
  document(view: CardView): ServedDocument | undefined {
    return this.docs.get(view);
  }

  /** The v1.0 card JSON (wire form). @throws Error when no card is configured. */
  card(): AgentCardJson {
    const d = this.docs.get('v1');
    if (!d) throw new Error('nestjs-a2a-auth: no card configured');
    return d.json as AgentCardJson;
  }

  /** The v1.0 extended card JSON, or the base card when no extended card is configured. */
  extendedCard(): AgentCardJson {
    return (this.docs.get('v1-extended') ?? this.docs.get('v1'))?.json as AgentCardJson;
  }

  /** The v0.3 view. */
  cardV03(): AgentCardV03Json {
    return this.docs.get('v03')?.json as AgentCardV03Json;
  }

  /** The RFC 9728 document, or `undefined` without a resource identifier. */
  resourceMetadata(): ServedDocument | undefined {
    return this.metadata;
  }

  /** Parsed RFC 9728 metadata JSON, or `undefined` without a resource identifier. */
  resourceMetadataJson(): ProtectedResourceMetadata | undefined {
    return this.metadata?.json as ProtectedResourceMetadata | undefined;
  }

  private serve(json: object): ServedDocument {
    const body = Buffer.from(JSON.stringify(json), 'utf8');
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    return { json, body, etag, lastModified: this.bootTime };
  }
}
