import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { A2A_AUTH_RESOLVED_OPTIONS } from '../constants';
import type { ResolvedOptions } from '../../core/options';
import type { AgentCardJson } from '../../core/card/agent-card.types';
import type { A2ACaller } from '../../core/caller';
import { buildAgentCard, toV03Card, type AgentCardV03Json, type DiscoveredSkill } from '../../core/card/card-builder';
import { checkAgentCard } from '../../core/card/card-checker';
import { extendedCardVariant } from '../../core/card/extended-card';
import { signAgentCard } from '../../core/card/card-signer';
import { buildProtectedResourceMetadata, type ProtectedResourceMetadata } from '../../core/card/resource-metadata';
import { RateLimitedLog } from '../audit/rate-limited-log';
import { SkillRegistry } from './skill-registry';

/** Moves `iconUrl` after `signatures`, the SDK's `toJSON` key order, so the served text matches it too (JCS ignores order). */
function iconLast<T extends object>(card: T): T {
  const { iconUrl, ...rest } = card as { iconUrl?: string };
  return (iconUrl === undefined ? card : { ...rest, iconUrl }) as T;
}

/** Freezes a JSON value and everything in it. */
function deepFreeze(v: unknown): void {
  if (v === null || typeof v !== 'object' || Object.isFrozen(v)) return;
  Object.freeze(v);
  for (const child of Object.values(v as object)) deepFreeze(child);
}

/**
 * A2A HTTP+JSON clients (the official SDK's among them) fetch the extended card at `<interface url>/extendedAgentCard`,
 * and the library serves it at `/extendedAgentCard` of the app, i.e. under `card.url`: an HTTP+JSON interface elsewhere
 * (say `card.url` + `/a2a/rest`) would make such a client's `getAgentCard()` fail with 404. Warns once per interface.
 */
function warnMisplacedRestInterfaces(card: AgentCardJson, cardUrl: string): void {
  const path = (u: string) => {
    try {
      return new URL(u).pathname.replace(/\/+$/, '');
    } catch {
      return undefined;
    }
  };
  const root = path(cardUrl);
  for (const i of card.supportedInterfaces ?? []) {
    if (i.protocolBinding !== 'HTTP+JSON' || path(i.url) === root) continue;
    new Logger('A2AAgentCard').warn(
      `card.extendedCard: the HTTP+JSON interface ${i.url} is not at card.url, so HTTP+JSON clients will ask ${i.url.replace(/\/+$/, '')}/extendedAgentCard ` +
        'while the library serves the extended card at /extendedAgentCard of this app: route that path to it, or serve the HTTP+JSON binding at card.url',
    );
  }
}

/** A document ready to serve: serialized once, with its validators. */
export interface ServedDocument {
  /** The JSON value (deeply frozen: shared by every caller). */
  json: unknown;
  /** UTF-8 JSON bytes. */
  body: Buffer;
  /** Strong ETag (quoted, RFC 9110 §8.8.3). */
  etag: string;
  /** `Last-Modified` (RFC 9110 §8.8.2): the boot time. */
  lastModified: string;
}

/** What a failed callback threw, for the log: its message, at most 500 characters; never throws itself. */
function describe(e: unknown): string {
  try {
    return String(e instanceof Error ? e.message : e).slice(0, 500);
  } catch {
    return 'threw a value that cannot be printed';
  }
}

/** The card views the service holds. */
export type CardView = 'v1' | 'v03' | 'v1-extended' | 'v03-extended';

/** One caller's extended card: the unsigned v1.0 card and both served views (signed when `card.signing` is set). */
export interface ExtendedCardDocuments {
  /** The v1.0 card before signing (what `card.extendedCardFor` is given a copy of). */
  card: AgentCardJson;
  /** The v1.0 view as served. */
  v1: ServedDocument;
  /** The v0.3 view as served. */
  v03: ServedDocument;
}

/** How many per-caller extended card variants (distinct sets of visible `extendedOnly` skills) stay built; the oldest is dropped past it. */
export const EXTENDED_CARD_VARIANTS_MAX = 64;
/** How long `card.extendedCardFor` may take, in ms, before the fetch fails with {@link ExtendedCardError}. */
export const EXTENDED_CARD_CALLBACK_TIMEOUT_MS = 5000;

/**
 * The per-caller extended card could not be built: `card.extendedCardFor` threw, timed out after
 * {@link EXTENDED_CARD_CALLBACK_TIMEOUT_MS} ms, or returned a card that fails {@link checkAgentCard}. The message is
 * fixed (it reaches the caller: HTTP 500 A2A `INTERNAL`, JSON-RPC `-32603`); the reason is logged, not sent.
 */
export class ExtendedCardError extends Error {
  constructor() {
    super('the extended Agent Card could not be built for this caller');
    this.name = 'ExtendedCardError';
  }
}

/**
 * Builds the Agent Card views and the RFC 9728 metadata once at startup (after skill discovery),
 * signs them when configured, and serves them from memory.
 *
 * The extended card is per caller ({@link extendedDocumentsFor}): its `extendedOnly` skills are those the caller's
 * scopes grant. Each distinct variant is built (and signed) once and kept, at most {@link EXTENDED_CARD_VARIANTS_MAX};
 * the cache key is the set of visible skills, so no caller ever gets a card built for another set of scopes.
 * `card.extendedCardFor` runs on every fetch and its result is never cached.
 */
@Injectable()
export class AgentCardService implements OnModuleInit {
  private docs = new Map<CardView, ServedDocument>();
  private metadata?: ServedDocument;
  private skillList: readonly DiscoveredSkill[] = [];
  private full?: { key: string; docs: ExtendedCardDocuments };
  private variants = new Map<string, Promise<ExtendedCardDocuments>>();
  private readonly failureLog = new RateLimitedLog(new Logger('A2AAgentCard'), 20, 'a2a.card.extended.failure.suppressed');
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
    for (const [view, json] of views) this.docs.set(view, await this.signed(json));
    if (o.card.extendedCard) {
      warnMisplacedRestInterfaces(base, o.card.url);
      this.skillList = skills;
      const all = skills.filter((s) => s.skill.extendedOnly).map((s) => s.skill.id);
      const docs = await this.views(buildAgentCard(o, skills, true));
      this.full = { key: all.sort().join(' '), docs };
      this.docs.set('v1-extended', docs.v1).set('v03-extended', docs.v03);
    }
  }

  /**
   * The extended card for one verified caller (A2A v1.0 §13.3): every skill that is not `extendedOnly`, plus the
   * `extendedOnly` skills whose scopes the caller's token grants ({@link extendedCardVariant}), then
   * `card.extendedCardFor` when configured. Both views are signed when `card.signing` is set.
   * @throws ExtendedCardError when `card.extendedCardFor` throws, times out or returns an invalid card (logged).
   * @throws Error when no extended card is configured.
   */
  async extendedDocumentsFor(caller: A2ACaller): Promise<ExtendedCardDocuments> {
    const c = this.opts.card;
    if (!c?.extendedCard || !this.full) throw new Error('nestjs-a2a-auth: no extended card configured');
    const variant = extendedCardVariant(this.skillList, caller.scopes);
    const docs = variant.key === this.full.key ? this.full.docs : await this.variant(variant.key, variant.skills);
    return c.extendedCardFor ? this.customized(caller, docs) : docs;
  }

  /** The v1.0 extended card JSON (as served, with `signatures` when signing) for one caller; see {@link extendedDocumentsFor}. */
  async extendedCardFor(caller: A2ACaller): Promise<AgentCardJson> {
    return (await this.extendedDocumentsFor(caller)).v1.json as AgentCardJson;
  }

  private variant(key: string, skills: readonly DiscoveredSkill[]): Promise<ExtendedCardDocuments> {
    const hit = this.variants.get(key);
    if (hit) {
      this.variants.delete(key); // least recently used goes first
      this.variants.set(key, hit);
      return hit;
    }
    const built = this.views(buildAgentCard(this.opts, skills, true));
    void built.catch(() => this.variants.get(key) === built && this.variants.delete(key));
    this.variants.set(key, built);
    if (this.variants.size > EXTENDED_CARD_VARIANTS_MAX) this.variants.delete(this.variants.keys().next().value!);
    return built;
  }

  private async customized(caller: A2ACaller, variant: ExtendedCardDocuments): Promise<ExtendedCardDocuments> {
    const fn = this.opts.card!.extendedCardFor!;
    const base = variant.card;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${EXTENDED_CARD_CALLBACK_TIMEOUT_MS} ms`)), EXTENDED_CARD_CALLBACK_TIMEOUT_MS);
      });
      const out: unknown = await Promise.race([Promise.resolve().then(() => fn(caller, structuredClone(base))), timeout]);
      if (typeof out !== 'object' || out === null || Array.isArray(out))
        throw new Error(`returned ${out === null ? 'null' : Array.isArray(out) ? 'an array' : typeof out}, not an Agent Card`);
      // A JSON copy: what is checked, signed and served cannot change afterwards, and nothing but JSON gets through.
      const card = JSON.parse(JSON.stringify(out)) as AgentCardJson;
      if (isDeepStrictEqual(card, base)) return variant; // unchanged: the built (and signed) variant, stable ETag and signature
      const problems = checkAgentCard(card, 'card', { sdkOptional: true });
      if (problems.length) throw new Error(`returned an invalid Agent Card: ${problems.join('; ')}`);
      return await this.views(card);
    } catch (e) {
      const reason = describe(e);
      this.failureLog.write('warn', () =>
        JSON.stringify({
          type: 'a2a.card.extended.failed',
          clientId: caller.clientId,
          issuer: caller.issuer,
          reason: `card.extendedCardFor ${reason}`,
          time: new Date().toISOString(),
        }),
      );
      throw new ExtendedCardError();
    } finally {
      clearTimeout(timer);
    }
  }

  /** Both served views of one v1.0 card, signed when configured. */
  private async views(card: AgentCardJson): Promise<ExtendedCardDocuments> {
    const docs = { card, v1: await this.signed(card), v03: await this.signed(toV03Card(card, this.opts.card!.url)) };
    deepFreeze(card);
    return docs;
  }

  private async signed(json: object): Promise<ServedDocument> {
    const signing = this.opts.card?.signing;
    return this.serve(signing ? iconLast(await signAgentCard(json, signing)) : json);
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

  /**
   * The full v1.0 extended card JSON (every `extendedOnly` skill: what `npm run card -- --extended` prints), or the base
   * card when no extended card is configured. Callers are served {@link extendedCardFor} instead.
   */
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

  // Frozen: one object serves every caller (the JSON-RPC binding reads it on each call, the HTTP routes serve its bytes),
  // so app code holding it must not be able to change the card for the next caller or set it apart from the bytes.
  private serve(json: object): ServedDocument {
    deepFreeze(json);
    const body = Buffer.from(JSON.stringify(json), 'utf8');
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    return { json, body, etag, lastModified: this.bootTime };
  }
}
