/**
 * RFC 9728 §3.1 location of the protected resource metadata for a resource identifier:
 * `/.well-known/oauth-protected-resource` inserted between the host and the resource's path.
 * @example `https://a.example/agents/x` → `https://a.example/.well-known/oauth-protected-resource/agents/x`
 */
export function protectedResourceMetadataUrl(resource: string): string {
  const u = new URL(resource);
  const path = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '');
  return `${u.origin}/.well-known/oauth-protected-resource${path}`;
}

/** RFC 9728 §2 protected resource metadata document (the fields this library publishes). */
export interface ProtectedResourceMetadata {
  resource: string;
  authorization_servers: string[];
  scopes_supported?: string[];
  bearer_methods_supported: string[];
  resource_name?: string;
  resource_documentation?: string;
  tls_client_certificate_bound_access_tokens?: boolean;
  /** RFC 9728 §2: the DPoP proof algorithms accepted (RFC 9449); present when any route accepts DPoP. */
  dpop_signing_alg_values_supported?: string[];
  /** RFC 9728 §2: `true` when every DPoP-capable request must use DPoP (module-wide mode `'required'`). */
  dpop_bound_access_tokens_required?: boolean;
}

/** Inputs of {@link buildProtectedResourceMetadata}. */
export interface ResourceMetadataInput {
  resource: string;
  issuers: string[];
  scopes: string[];
  resourceName?: string;
  documentationUrl?: string;
  allowQueryToken?: boolean;
  certificateBound?: boolean;
  /** The accepted DPoP proof algorithms; omit when DPoP is off. */
  dpopAlgorithms?: readonly string[];
  /** DPoP is required module-wide. */
  dpopRequired?: boolean;
}

/**
 * Builds the RFC 9728 §2 document. `bearer_methods_supported` is `["header"]` (plus `"query"` if enabled); with DPoP,
 * `dpop_signing_alg_values_supported` and `dpop_bound_access_tokens_required` (RFC 9728 §2, RFC 9449).
 */
export function buildProtectedResourceMetadata(i: ResourceMetadataInput): ProtectedResourceMetadata {
  const doc: ProtectedResourceMetadata = {
    resource: i.resource,
    authorization_servers: [...i.issuers],
    bearer_methods_supported: i.allowQueryToken ? ['header', 'query'] : ['header'],
  };
  if (i.scopes.length) doc.scopes_supported = [...i.scopes];
  if (i.resourceName) doc.resource_name = i.resourceName;
  if (i.documentationUrl) doc.resource_documentation = i.documentationUrl;
  if (i.certificateBound) doc.tls_client_certificate_bound_access_tokens = true;
  if (i.dpopAlgorithms?.length) {
    doc.dpop_signing_alg_values_supported = [...i.dpopAlgorithms];
    doc.dpop_bound_access_tokens_required = i.dpopRequired === true;
  }
  return doc;
}
