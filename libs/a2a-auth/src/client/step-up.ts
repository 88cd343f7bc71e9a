import { missingScopes } from '../core/scopes';
import { InsufficientScopeError } from './errors';

/** One challenge of a `WWW-Authenticate` header (RFC 9110 §11.6.1): the scheme (lower-cased) and its auth-params (names lower-cased). */
export interface AuthChallenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` value into its challenges (several may share one header, RFC 9110 §11.6.1): `scheme
 * name=value, name="quoted \" value"`. A token68 credential is skipped. Never throws; garbage gives what parsed so far.
 */
export function parseWwwAuthenticate(header: string | null | undefined): AuthChallenge[] {
  const out: AuthChallenge[] = [];
  if (!header) return out;
  const s = header.slice(0, 8192);
  const tok = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;
  let i = 0;
  let cur: AuthChallenge | undefined;
  const ws = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
  };
  while (i < s.length) {
    ws();
    tok.lastIndex = i;
    const m = tok.exec(s);
    if (!m) {
      i++;
      continue;
    }
    i = tok.lastIndex;
    let j = i;
    while (j < s.length && (s[j] === ' ' || s[j] === '\t')) j++;
    if (s[j] === '=' && s[j + 1] !== '=' && cur) {
      j++;
      while (j < s.length && (s[j] === ' ' || s[j] === '\t')) j++;
      let value = '';
      if (s[j] === '"') {
        j++;
        while (j < s.length && s[j] !== '"') {
          if (s[j] === '\\' && j + 1 < s.length) j++;
          value += s[j++];
        }
        j++;
      } else {
        const start = j;
        while (j < s.length && s[j] !== ',' && s[j] !== ' ' && s[j] !== '\t') j++;
        value = s.slice(start, j);
      }
      cur.params[m[0].toLowerCase()] ??= value;
      i = j;
    } else if (s[j] === '=') {
      // token68 (e.g. `Basic abc==`): skip it.
      while (j < s.length && s[j] !== ',') j++;
      i = j;
    } else {
      cur = { scheme: m[0].toLowerCase(), params: {} };
      out.push(cur);
    }
  }
  return out;
}

/**
 * The scopes of an RFC 6750 §3.1 `insufficient_scope` challenge (a `Bearer` or `DPoP` challenge, RFC 9449 §7.1, with
 * `error="insufficient_scope"`), or `undefined` when the header has none. `[]` when it names no `scope`.
 */
export function insufficientScopeChallenge(header: string | null | undefined): string[] | undefined {
  for (const c of parseWwwAuthenticate(header)) {
    if ((c.scheme === 'bearer' || c.scheme === 'dpop') && c.params.error === 'insufficient_scope') {
      return [...new Set((c.params.scope ?? '').split(' ').filter((x) => /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(x)))];
    }
  }
  return undefined;
}

/** What to ask for after an `insufficient_scope` refusal: see {@link planStepUp}. */
export interface StepUpPlan {
  /** The full scope set of the new token request: what was requested plus the missing scopes. */
  scopes: string[];
  /** The scopes added. */
  added: string[];
}

/**
 * Step-up authorization (as the MCP authorization spec's "Step-Up Authorization Flow"): after a refusal naming
 * `required` scopes, the scopes to request next, or a typed refusal. Pure: used for a 403 `insufficient_scope` answer
 * and usable for a mid-task request for more scopes.
 *
 * - `missing` = `required` − `granted` (the refused token's scopes);
 * - every missing scope must be in `requested` ∪ `allowed` (the caller's configured scopes and its `stepUpScopes`):
 *   a scope outside them is never requested;
 * - the new request is `requested` ∪ `missing`.
 * @throws InsufficientScopeError (`stepUpAttempted` false) when nothing is missing or a missing scope is not allowed.
 */
export function planStepUp(p: {
  required: readonly string[];
  granted: readonly string[];
  requested: readonly string[];
  allowed: readonly string[];
  /** For the error: the request URL. */
  url?: string;
  /** For the error: the refusal's `WWW-Authenticate` value. */
  wwwAuthenticate?: string | null;
}): StepUpPlan {
  const missing = missingScopes(p.granted, p.required);
  const may = new Set([...p.requested, ...p.allowed]);
  const refused = missing.filter((s) => !may.has(s));
  if (missing.length === 0 || refused.length > 0) {
    throw new InsufficientScopeError({
      requiredScopes: p.required,
      missingScopes: missing,
      refusedScopes: refused,
      stepUpAttempted: false,
      url: p.url,
      wwwAuthenticate: p.wwwAuthenticate,
    });
  }
  const requested = [...new Set(p.requested)];
  const added = missing.filter((s) => !requested.includes(s));
  return { scopes: [...requested, ...added], added };
}
