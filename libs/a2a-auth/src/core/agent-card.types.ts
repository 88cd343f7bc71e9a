/** A2A v1.0 wire types (ProtoJSON form, as served). Names follow `specification/a2a.proto`. */

/** `AgentInterface`. */
export interface AgentInterfaceJson {
  url: string;
  protocolBinding: string;
  protocolVersion: string;
  tenant?: string;
}

/** `StringList` inside a `SecurityRequirement`; an empty list is omitted in ProtoJSON. */
export interface StringListJson {
  list?: string[];
}

/** `SecurityRequirement`: all schemes of one entry are required together (AND); entries of an array are alternatives (OR). */
export interface SecurityRequirementJson {
  schemes?: Record<string, StringListJson>;
}

/** `SecurityScheme` oneof wrapper. */
export type SecuritySchemeJson =
  | {
      oauth2SecurityScheme: {
        description?: string;
        flows: { clientCredentials: { tokenUrl: string; refreshUrl?: string; scopes?: Record<string, string> } };
        oauth2MetadataUrl?: string;
      };
    }
  | { httpAuthSecurityScheme: { description?: string; scheme: string; bearerFormat?: string } }
  | { apiKeySecurityScheme: { description?: string; location: string; name: string } }
  | { openIdConnectSecurityScheme: { description?: string; openIdConnectUrl: string } }
  | { mtlsSecurityScheme: { description?: string } };

/** `AgentSkill`. */
export interface AgentSkillJson {
  id: string;
  name: string;
  description: string;
  tags?: string[];
  examples?: string[];
  inputModes?: string[];
  outputModes?: string[];
  securityRequirements?: SecurityRequirementJson[];
}

/** `AgentCardSignature` (JWS, RFC 7515 §7.2.2 flattened). */
export interface AgentCardSignatureJson {
  protected: string;
  signature: string;
  header?: Record<string, unknown>;
}

/** A2A `AgentExtension` on the wire (ProtoJSON: `required` only when true). */
export interface AgentExtensionJson {
  uri: string;
  description?: string;
  required?: boolean;
  params?: Record<string, unknown>;
}

/** `AgentCard` (A2A v1.0). */
export interface AgentCardJson {
  name: string;
  description: string;
  /** Absent when the agent serves no A2A binding (ProtoJSON omits an empty list). */
  supportedInterfaces?: AgentInterfaceJson[];
  provider?: { url: string; organization: string };
  version: string;
  documentationUrl?: string;
  capabilities: { streaming?: boolean; pushNotifications?: boolean; extendedAgentCard?: boolean; extensions?: AgentExtensionJson[] };
  securitySchemes?: Record<string, SecuritySchemeJson>;
  securityRequirements?: SecurityRequirementJson[];
  defaultInputModes?: string[];
  defaultOutputModes?: string[];
  skills?: AgentSkillJson[];
  signatures?: AgentCardSignatureJson[];
  iconUrl?: string;
}
