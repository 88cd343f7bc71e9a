import { grantsScopes } from '../scopes';
import type { DiscoveredSkill } from './card-builder';

/** The skills one caller's extended Agent Card lists, and the key of that variant. */
export interface ExtendedCardVariant {
  /**
   * The ids of the `extendedOnly` skills the caller may use, sorted and joined with a space (skill ids have no
   * whitespace); `''` when none. Two callers with the same key get the same card, so it keys a cache of built cards:
   * the key is derived from the granted scopes but never holds them, and there are at most 2^(extendedOnly skills) keys.
   */
  key: string;
  /** Every skill that is not `extendedOnly`, plus the `extendedOnly` skills the caller may use, in discovery order. */
  skills: DiscoveredSkill[];
}

/**
 * Which skills the authenticated extended Agent Card (A2A v1.0 §13.3: "MAY return different extended card content
 * based on the authenticated client's … authorization level") lists for a caller with these scopes:
 *
 * - an `extendedOnly` skill only when the caller is granted all of its `@RequireScopes` ({@link grantsScopes}, the same
 *   rule the guard and the A2A skill check enforce); an `extendedOnly` `@Public()` skill for every authenticated caller;
 * - every other skill always, as on the public card, even when the caller lacks its scopes: the card advertises what
 *   a skill requires (its `securityRequirements`), so a client learns which scopes to ask for, and the extended card
 *   never shows less than the public one.
 *
 * The caller's delegation chain is not considered here: a message from a caller the `@Delegation()` policy refuses is
 * still answered 403 by the skill check.
 *
 * @param skills every discovered skill.
 * @param granted the caller's granted scopes.
 */
export function extendedCardVariant(skills: readonly DiscoveredSkill[], granted: ReadonlySet<string> | readonly string[]): ExtendedCardVariant {
  const visible: DiscoveredSkill[] = [];
  const ids: string[] = [];
  for (const s of skills) {
    if (!s.skill.extendedOnly) visible.push(s);
    else if (grantsScopes(granted, s.scopes)) {
      visible.push(s);
      ids.push(s.skill.id);
    }
  }
  return { key: ids.sort().join(' '), skills: visible };
}
