/** Largest JWKS or metadata document accepted, in bytes (1 MiB). */
export const MAX_DOCUMENT_BYTES = 1024 * 1024;

/**
 * GETs a JSON document with a total deadline and a size cap, so a hanging, slow-drip or
 * oversized key server can never hang or exhaust the resource server.
 *
 * @param timeoutMs total deadline in milliseconds (connect + headers + body).
 * @throws Error on timeout, non-2xx status, a body over {@link MAX_DOCUMENT_BYTES}, or invalid JSON.
 */
export async function fetchJson(url: string, timeoutMs: number): Promise<unknown> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  try {
    const res = await fetch(url, { signal: ac.signal, headers: { accept: 'application/json' }, redirect: 'error' });
    if (res.status < 200 || res.status > 299) {
      await res.body?.cancel().catch(() => undefined);
      throw new Error(`HTTP ${res.status}`);
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
