// The files of an upload service on disk, one directory per slot under the service's directory:
// <dir>/<slot id>/file (the bytes) and meta.json (owner, name, size, type, when). A PUT streams
// the body to file.part and renames it when every byte is in; nothing is ever held in memory.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { sendStatus } from '../../src/net/http.js';
import type { Logger } from '../../src/log.js';
import { SLOT_ID, type SlotSigner } from './slots.js';

export interface FileMeta {
  owner: string;
  filename: string;
  size: number;
  type: string;
  /** Milliseconds since the epoch. */
  created: number;
}

/** Types a browser may show inline; everything else is served as an attachment. SVG can script. */
const INLINE = /^(image\/(png|jpeg|gif|webp|avif|bmp|heic|heif)|audio\/[\w.+-]+|video\/[\w.+-]+)$/;

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, HEAD, PUT, OPTIONS',
  'Access-Control-Allow-Headers': 'Content-Type, Content-Length, Authorization',
  'Access-Control-Max-Age': '86400',
};

export interface UploadFilesOptions {
  dir: string;
  /** The URL path prefix, ending in '/'. */
  prefix: string;
  signer: SlotSigner;
  /** Seconds a file is kept; 0: for ever. */
  expireAfter: number;
  log: Logger;
  /** Called once a file is complete (for the owner's quota). */
  stored(slotId: string, meta: FileMeta): Promise<void>;
  /** Called when a file is deleted (expiry, account deletion). */
  removed(slotId: string, meta: FileMeta): Promise<void>;
}

export class UploadFiles {
  constructor(private readonly o: UploadFilesOptions) {}

  /** The route's handler: OPTIONS (CORS preflight), PUT, GET and HEAD of `<prefix><slot id>/<name>`. */
  readonly handle = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    for (const [name, value] of Object.entries(CORS)) res.setHeader(name, value);
    if (req.method === 'OPTIONS') {
      res.writeHead(204);
      res.end();
      return;
    }
    const rest = url.pathname.slice(this.o.prefix.length);
    const slash = rest.indexOf('/');
    const id = slash === -1 ? rest : rest.slice(0, slash);
    let filename: string;
    try {
      filename = decodeURIComponent(slash === -1 ? '' : rest.slice(slash + 1));
    } catch {
      return sendStatus(res, 404);
    }
    if (!SLOT_ID.test(id) || filename === '') return sendStatus(res, 404);
    if (req.method === 'PUT') return this.put(req, res, url, id, filename);
    return this.get(req, res, id);
  };

  private async put(req: IncomingMessage, res: ServerResponse, url: URL, id: string, filename: string): Promise<void> {
    const slot = this.o.signer.verify(url.searchParams.get('token') ?? '', id, filename);
    if (slot === 'invalid') return sendStatus(res, 403, 'This upload slot is not valid');
    if (slot === 'expired') return sendStatus(res, 403, 'This upload slot has expired');
    const length = req.headers['content-length'];
    if (length === undefined) return sendStatus(res, 411);
    if (Number(length) !== slot.size) return sendStatus(res, 400, `Content-Length must be the size of the slot (${slot.size})`);
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (slot.type && type !== slot.type.toLowerCase()) return sendStatus(res, 400, `Content-Type must be that of the slot (${slot.type})`);

    const dir = path.join(this.o.dir, id);
    await mkdir(dir, { recursive: true });
    const part = path.join(dir, 'file.part');
    const final = path.join(dir, 'file');
    if (await exists(final)) return sendStatus(res, 409, 'This slot has been used');
    let handle;
    try {
      handle = await open(part, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return sendStatus(res, 409, 'This slot is being uploaded');
      throw err;
    }
    let received = 0;
    try {
      req.on('data', (chunk: Buffer) => (received += chunk.length));
      await pipeline(req, createWriteStream('', { fd: handle }));
    } catch {
      await unlink(part).catch(() => {});
      if (!res.headersSent) sendStatus(res, 400, 'The upload did not complete');
      return;
    }
    if (received !== slot.size) {
      await unlink(part).catch(() => {});
      return sendStatus(res, 400, `Expected ${slot.size} bytes, received ${received}`);
    }
    const meta: FileMeta = { owner: slot.owner, filename, size: slot.size, type: slot.type, created: Date.now() };
    await writeFile(path.join(dir, 'meta.json'), JSON.stringify(meta), { mode: 0o600 });
    await rename(part, final);
    await this.o.stored(id, meta);
    this.o.log.debug({ owner: slot.owner, size: slot.size }, 'file uploaded');
    res.writeHead(201, { 'Content-Length': 0 });
    res.end();
  }

  private async get(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const meta = await this.meta(id);
    if (!meta) return sendStatus(res, 404);
    if (this.expired(meta)) {
      await this.remove(id, meta);
      return sendStatus(res, 404);
    }
    const file = path.join(this.o.dir, id, 'file');
    const info = await stat(file).catch(() => undefined);
    if (!info) return sendStatus(res, 404);
    const type = meta.type || 'application/octet-stream';
    const disposition = INLINE.test(type.toLowerCase()) ? 'inline' : 'attachment';
    res.writeHead(200, {
      'Content-Type': type,
      'Content-Length': info.size,
      'Content-Disposition': `${disposition}; filename*=UTF-8''${encodeURIComponent(meta.filename)}`,
      // Whatever it is, it runs nothing: no scripts, no plugins, no frames, a sandboxed origin.
      'Content-Security-Policy': "default-src 'none'; sandbox",
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'public, max-age=31536000, immutable',
      'Cross-Origin-Resource-Policy': 'cross-origin',
    });
    if (req.method === 'HEAD') return void res.end();
    await pipeline(createReadStream(file), res);
  }

  expired(meta: FileMeta, now = Date.now()): boolean {
    return this.o.expireAfter > 0 && meta.created + this.o.expireAfter * 1000 < now;
  }

  async meta(id: string): Promise<FileMeta | undefined> {
    try {
      return JSON.parse(await readFile(path.join(this.o.dir, id, 'meta.json'), 'utf8')) as FileMeta;
    } catch {
      return undefined;
    }
  }

  async remove(id: string, meta: FileMeta): Promise<void> {
    await rm(path.join(this.o.dir, id), { recursive: true, force: true });
    await this.o.removed(id, meta);
  }

  /**
   * Deletes the files that `doomed` picks (expired ones by default) and uploads abandoned for
   * a day; returns how many files went.
   */
  async sweep(doomed: (meta: FileMeta) => boolean = (m) => this.expired(m)): Promise<number> {
    let entries: string[];
    try {
      entries = await readdir(this.o.dir);
    } catch {
      return 0;
    }
    let count = 0;
    for (const id of entries) {
      if (!SLOT_ID.test(id)) continue;
      const meta = await this.meta(id);
      if (meta) {
        if (doomed(meta)) {
          await this.remove(id, meta);
          count++;
        }
        continue;
      }
      const part = await stat(path.join(this.o.dir, id, 'file.part')).catch(() => undefined);
      if (!part || part.mtimeMs < Date.now() - 86_400_000) await rm(path.join(this.o.dir, id), { recursive: true, force: true });
    }
    return count;
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
