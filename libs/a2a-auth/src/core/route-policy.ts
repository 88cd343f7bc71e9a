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
