/** Largest JWKS or metadata document accepted, in bytes (1 MiB). */
export const MAX_DOCUMENT_BYTES = 1024 * 1024;

/** A request body for {@link fetchJson} (an RFC 7662 introspection call, for instance); without it the request is a GET. */
export interface FetchJsonPost {
  /** Request headers besides `accept: application/json`. */
  headers: Record<string, string>;
  /** The request body (e.g. `application/x-www-form-urlencoded`). */
  body: string;
}

/** A non-2xx answer of {@link fetchJson}; `status` is the HTTP status. The message names only the status. */
export class HttpStatusError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
    this.name = 'HttpStatusError';
  }
}

/**
 * GETs (or, with `post`, POSTs) a JSON document with a total deadline and a size cap, so a hanging, slow-drip or
 * oversized key server can never hang or exhaust the resource server. Redirects are refused.
 *
 * @param timeoutMs total deadline in milliseconds (connect + headers + body).
 * @throws HttpStatusError on a non-2xx status; Error on timeout, a body over {@link MAX_DOCUMENT_BYTES}, or invalid JSON.
 */
export async function fetchJson(url: string, timeoutMs: number, post?: FetchJsonPost): Promise<unknown> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  try {
    const res = await fetch(url, {
      signal: ac.signal,
      redirect: 'error',
      ...(post ? { method: 'POST', headers: { ...post.headers, accept: 'application/json' }, body: post.body } : { headers: { accept: 'application/json' } }),
    });
    if (res.status < 200 || res.status > 299) {
      await res.body?.cancel().catch(() => undefined);
      throw new HttpStatusError(res.status);
    }
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > MAX_DOCUMENT_BYTES) {
      await res.body?.cancel().catch(() => undefined);
      throw new Error('document too large');
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    if (res.body) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
        if (total > MAX_DOCUMENT_BYTES) {
          await reader.cancel().catch(() => undefined);
          throw new Error('document too large');
        }
        chunks.push(value);
      }
    }
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    if (ac.signal.aborted) throw new Error(`timed out after ${timeoutMs} ms`, { cause: e });
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
