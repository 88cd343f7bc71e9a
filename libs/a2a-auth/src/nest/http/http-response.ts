/** CORS headers of the public card documents: any origin may read them (GET, HEAD, OPTIONS). */
export const CARD_CORS_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
  'Access-Control-Allow-Headers': 'A2A-Version, If-None-Match, Content-Type',
  'Access-Control-Expose-Headers': 'ETag, Last-Modified',
});

/** Writes a complete response on express (`ServerResponse`) or fastify (`FastifyReply`), with exact headers. */
export function sendRaw(res: unknown, status: number, headers: Record<string, string>, body?: Buffer): void {
  const r = res as {
    code?: (s: number) => unknown;
    header?: (k: string, v: string) => unknown;
    send?: (b?: unknown) => unknown;
    raw?: unknown;
    statusCode?: number;
    setHeader?: (k: string, v: string) => void;
    end?: (b?: unknown) => void;
  };
  if (typeof r.code === 'function' && r.raw && typeof r.send === 'function') {
    r.code(status);
    for (const [k, v] of Object.entries(headers)) r.header!(k, v);
    r.send(body ?? '');
    return;
  }
  r.statusCode = status;
  for (const [k, v] of Object.entries(headers)) r.setHeader!(k, v);
  r.end!(body);
}

/** RFC 9110 §13.1.2 `If-None-Match` weak comparison against one ETag. */
export function etagMatches(ifNoneMatch: string | string[] | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  const v = Array.isArray(ifNoneMatch) ? ifNoneMatch.join(',') : ifNoneMatch;
  if (v.trim() === '*') return true;
  const bare = etag.replace(/^W\//, '');
  return v.split(',').some((t) => t.trim().replace(/^W\//, '') === bare);
}
