import { SetMetadata } from '@nestjs/common';
import { AGENT_SKILL_KEY } from '../constants';

/** An A2A v1.0 `AgentSkill`, as declared on a handler. Its security requirement comes from `@RequireScopes`/`@Public`. */
export interface AgentSkillOptions {
  /** Unique skill id (A2A `AgentSkill.id`); also the `message.metadata.skillId` that routes A2A messages. */
  id: string;
  /** Human-readable name. */
  name: string;
  /** What the skill does. */
  description: string;
  /** Keywords. Default `[]`. */
  tags?: string[];
  /** Example prompts. */
  examples?: string[];
  /** Accepted media types; default: the card's `defaultInputModes`. */
  inputModes?: string[];
  /** Produced media types; default: the card's `defaultOutputModes`. */
  outputModes?: string[];
  /** Advertise only in the authenticated extended card. Default false. */
  extendedOnly?: boolean;
}

/**
 * Declares a handler (controller route, or provider method reached by A2A messages) as an A2A skill.
 * Discovered at boot; it appears in the Agent Card with its `@RequireScopes` as `securityRequirements`.
 */
export const AgentSkill = (skill: AgentSkillOptions): MethodDecorator => SetMetadata(AGENT_SKILL_KEY, Object.freeze({ ...skill }));
