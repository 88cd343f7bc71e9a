import { Inject, Injectable, Logger } from '@nestjs/common';
import { DiscoveryService, Reflector } from '@nestjs/core';
import { A2A_AUTH_RESOLVED_OPTIONS } from '../constants';
import { A2AAuthConfigError, type ResolvedOptions } from '../../core/options';
import { routeAuth } from '../guard/route-auth';
import type { DiscoveredSkill } from '../../core/card/card-builder';
import type { DelegationOptions } from '../../core/delegation';
import { IN_TASK_AUTH_EXTENSION_URI } from '../../core/in-task-authorization';

/** A discovered skill plus where it lives (for A2A message routing). */
export interface RegisteredSkill extends DiscoveredSkill {
  /** The class that declares it. */
  cls: Function;
  /** Method name on that class. */
  methodName: string;
  /** The handler's `@Delegation()` (class and method combined), applied over the module-wide policy. */
  delegation?: DelegationOptions;
}

/**
 * Finds every `@AgentSkill` on controllers and providers by reading class prototypes (so request-scoped
 * classes are found too), with the same `@RequireScopes`/`@Public` metadata the guard enforces.
 *
 * Boot checks (throwing {@link A2AAuthConfigError} stops the app):
 * - duplicate skill ids;
 * - a required scope missing from the `scopes` catalog (names the scope and the handler; `unknownScopePolicy: 'warn'` logs instead);
 * - catalog scopes no handler uses are logged at `log` level.
 */
@Injectable()
export class SkillRegistry {
  private readonly logger = new Logger('A2AAuth');
  private list?: RegisteredSkill[];
  private index = new Map<string, RegisteredSkill>();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly reflector: Reflector,
    @Inject(A2A_AUTH_RESOLVED_OPTIONS) private readonly opts: ResolvedOptions,
  ) {}

  /** All skills, discovering and checking them on first call. @throws A2AAuthConfigError */
  all(): readonly RegisteredSkill[] {
    if (!this.list) this.discover();
    return this.list!;
  }

  /** Whether any skill is `@Public()` (then A2A messages may arrive without a token). */
  hasPublic(): boolean {
    return this.all().some((s) => s.isPublic);
  }

  /** The skill with this id, if any. */
  get(id: string): RegisteredSkill | undefined {
    this.all();
    return this.index.get(id);
  }

  private discover(): void {
    // By class identity: a class provided in two modules is read once; two classes sharing a name are both read.
    const seen = new Set<Function>();
    const found: RegisteredSkill[] = [];
    const usedScopes = new Set<string>();
    const wrappers = [...this.discovery.getControllers(), ...this.discovery.getProviders()];
    for (const w of wrappers) {
      // Prototypes, not instances: request-scoped and transient classes have no static instance.
      const cls = w.metatype as Function | undefined;
      if (!cls || typeof cls !== 'function' || !cls.prototype || (w as { inject?: unknown }).inject || seen.has(cls)) continue;
      seen.add(cls);
      for (const name of methodNames(cls.prototype)) {
        const handler = cls.prototype[name];
        const meta = routeAuth(this.reflector, cls, handler);
        meta.scopes.forEach((s) => usedScopes.add(s));
        if (!meta.skill) {
          this.checkScopes(meta.scopes, `${cls.name}.${name}`);
          continue;
        }
        const source = `${cls.name}.${name}`;
        if (this.index.has(meta.skill.id)) {
          throw new A2AAuthConfigError(
            '@AgentSkill',
            `duplicate skill id ${JSON.stringify(meta.skill.id)} on ${source} and ${this.index.get(meta.skill.id)!.source}`,
          );
        }
        this.checkScopes(meta.scopes, source);
        const s: RegisteredSkill = {
          skill: meta.skill,
          scopes: meta.scopes,
          isPublic: meta.isPublic,
          source,
          cls,
          methodName: name,
          delegation: meta.delegation,
        };
        this.index.set(meta.skill.id, s);
        found.push(s);
      }
    }
    // Scopes an executor asks for mid-task, declared with the in-task authorization extension, are in use too.
    for (const e of this.opts.card?.capabilities?.extensions ?? []) {
      const inTask = e.uri === IN_TASK_AUTH_EXTENSION_URI && Array.isArray(e.params?.scopes) ? (e.params.scopes as unknown[]) : [];
      for (const s of inTask) if (typeof s === 'string') usedScopes.add(s);
    }
    const unused = Object.keys(this.opts.scopes).filter((s) => !usedScopes.has(s));
    if (unused.length) this.logger.log(`scopes in the catalog that no handler requires: ${unused.join(', ')}`);
    this.list = found;
  }

  private checkScopes(scopes: readonly string[], source: string): void {
    if (!this.opts.card && Object.keys(this.opts.scopes).length === 0) return; // no catalog to check against
    for (const s of scopes) {
      if (Object.prototype.hasOwnProperty.call(this.opts.scopes, s)) continue;
      const msg = `scope ${JSON.stringify(s)} required by ${source} is missing from the \`scopes\` catalog`;
      if (this.opts.unknownScopePolicy === 'warn') this.logger.warn(msg);
      else throw new A2AAuthConfigError('scopes', msg);
    }
  }
}

function methodNames(proto: object): string[] {
  const names = new Set<string>();
  for (let p: object | null = proto; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const n of Object.getOwnPropertyNames(p)) {
      if (n === 'constructor') continue;
      const d = Object.getOwnPropertyDescriptor(p, n);
      if (d && typeof d.value === 'function') names.add(n);
    }
  }
  return [...names];
}
