// Files of one directory over HTTP, and nothing outside it: the path is decoded once, any
// "..", "." or empty segment, backslash or NUL is refused, the resolved real path (symbolic
// links followed) must still be under the directory's real path, only regular files with a
// known extension are served, each with its content type. Text types are gzipped when the
// client accepts it; ETag/If-None-Match answers 304.
import { createReadStream } from 'node:fs';
import { realpathSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { sendStatus } from '../net/http.js';

const TYPES: Readonly<Record<string, { type: string; compress: boolean }>> = {
  '.js': { type: 'text/javascript; charset=utf-8', compress: true },
  '.css': { type: 'text/css; charset=utf-8', compress: true },
  '.json': { type: 'application/json; charset=utf-8', compress: true },
  '.map': { type: 'application/json; charset=utf-8', compress: true },
  '.wasm': { type: 'application/wasm', compress: true },
  '.svg': { type: 'image/svg+xml', compress: true },
  '.png': { type: 'image/png', compress: false },
  '.ico': { type: 'image/vnd.microsoft.icon', compress: true },
  '.ttf': { type: 'font/ttf', compress: true },
  '.woff2': { type: 'font/woff2', compress: false },
  '.mp3': { type: 'audio/mpeg', compress: false },
  '.ogg': { type: 'audio/ogg', compress: false },
};

export function contentTypeOf(file: string): string | undefined {
  return TYPES[path.extname(file).toLowerCase()]?.type;
}

/**
 * The path under the directory that `encoded` (a URL path's tail, still percent-encoded) names,
 * or undefined when it is not a plain relative path (traversal, NUL, bad encoding).
 */
export function safeRelativePath(encoded: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return undefined;
  const segments = decoded.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) return undefined;
  return segments.join(path.sep);
}

export class StaticFiles {
  private readonly root: string;

  /** `cacheControl`: the Cache-Control of every file served. Throws when `dir` does not exist. */
  constructor(
    dir: string,
    private readonly cacheControl: string,
  ) {
    this.root = realpathSync(dir);
  }

  /** Serves the file `encoded` names under the directory (GET or HEAD), or answers 404. */
  async serve(req: IncomingMessage, res: ServerResponse, encoded: string): Promise<void> {
    const file = await this.resolve(encoded);
    const kind = file && TYPES[path.extname(file).toLowerCase()];
    const info = file && kind ? await stat(file).catch(() => undefined) : undefined;
    if (!file || !kind || !info?.isFile()) return sendStatus(res, 404);
    const etag = `"${info.size.toString(36)}-${Math.floor(info.mtimeMs).toString(36)}"`;
    const gzip = kind.compress && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    res.setHeader('Content-Type', kind.type);
    res.setHeader('Cache-Control', this.cacheControl);
    res.setHeader('ETag', gzip ? `W/${etag}` : etag);
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    if (kind.compress) res.setHeader('Vary', 'Accept-Encoding');
    const match = req.headers['if-none-match'];
    if (match && match.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)) {
      res.writeHead(304);
      return void res.end();
    }
    if (gzip) res.setHeader('Content-Encoding', 'gzip');
    else res.setHeader('Content-Length', info.size);
    res.writeHead(200);
    if (req.method === 'HEAD') return void res.end();
    if (gzip) await pipeline(createReadStream(file), createGzip(), res);
    else await pipeline(createReadStream(file), res);
  }

  /** The real path of the file, when it is under the directory. */
  private async resolve(encoded: string): Promise<string | undefined> {
    const relative = safeRelativePath(encoded);
    if (relative === undefined) return undefined;
    const real = await realpath(path.join(this.root, relative)).catch(() => undefined);
    if (!real || !real.startsWith(this.root + path.sep)) return undefined;
    return real;
  }
}
