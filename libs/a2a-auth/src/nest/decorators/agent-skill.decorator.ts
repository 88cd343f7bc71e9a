import { SetMetadata } from '@nestjs/common';
import type { AgentSkillOptions } from '../../core/route-policy';
import { AGENT_SKILL_KEY } from '../constants';

export type { AgentSkillOptions };

/**
 * Declares a handler (controller route, or provider method reached by A2A messages) as an A2A skill.
 * Discovered at boot (also on request-scoped classes); it appears in the Agent Card with the same
 * `@RequireScopes` (class + method) the guard enforces as its `securityRequirements`, or, with `@Public()`,
 * an explicit no-authentication requirement `[{}]`. Duplicate ids fail the boot.
 *
 * @example `@AgentSkill({ id: 'submit-expense', name: 'Submit expense', description: 'Files an expense', tags: ['expense'] })`
 * @throws Error at decoration time when `id`, `name` or `description` is not a string, `id` is empty or has whitespace,
 *   or a list option is not an array of strings.
 */
export const AgentSkill = (skill: AgentSkillOptions): MethodDecorator => {
  if (!skill || typeof skill.id !== 'string' || skill.id === '' || /\s/.test(skill.id)) {
    throw new Error(`@AgentSkill: id must be a non-empty string without whitespace, got ${JSON.stringify(skill?.id)}`);
  }
  if (typeof skill.name !== 'string' || skill.name === '') throw new Error(`@AgentSkill(${skill.id}): name must be a non-empty string`);
  if (typeof skill.description !== 'string') throw new Error(`@AgentSkill(${skill.id}): description must be a string`);
  for (const k of ['tags', 'examples', 'inputModes', 'outputModes'] as const) {
    const v = skill[k];
    if (v !== undefined && (!Array.isArray(v) || v.some((x) => typeof x !== 'string')))
      throw new Error(`@AgentSkill(${skill.id}): ${k} must be an array of strings`);
  }
  const copy: AgentSkillOptions = { ...skill };
  for (const k of ['tags', 'examples', 'inputModes', 'outputModes'] as const) if (copy[k]) copy[k] = Object.freeze([...copy[k]!]) as string[];
  return SetMetadata(AGENT_SKILL_KEY, Object.freeze(copy));
};
