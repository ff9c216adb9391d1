// XEP-0363 HTTP File Upload as a service on a domain of its own (upload.<host> by default):
// local users ask for a slot (file name, size, content type) and get a PUT URL with a signed
// token (only that slot's upload verifies, until the slot expires) and a GET URL with an
// unguessable id. Uploads stream to disk under the data directory; downloads are served inert
// (sandboxing CSP, nosniff, attachment unless image/audio/video). Per-file size limit, optional
// per-user quota (sizes recorded in the database, so they go with the account), expiry.
import { xml, type Element } from '@xmpp/xml';
import path from 'node:path';
import { z } from 'zod';
import { parseJid, type Jid } from '../../src/jid.js';
import { defineModule } from '../../src/module-api/define.js';
import { serveDomain } from '../../src/module-api/service-domain.js';
import { StanzaError } from '../../src/stream/errors.js';
import { form } from '../../src/xml/data-forms.js';
import { UploadFiles, type FileMeta } from './files.js';
import { SlotSigner, loadSecret, newSlotId, sanitiseFilename } from './slots.js';

export const NS_UPLOAD = 'urn:xmpp:http:upload:0';
const CONTENT_TYPE = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i;

export const HttpUploadConfig = z.strictObject({
  /** The service's domain; "{host}" stands for the host's domain. */
  domain: z.string().min(1).default('upload.{host}'),
  /** The service's name in service discovery. */
  name: z.string().default('HTTP File Upload'),
  /** Largest file in bytes. */
  max_file_size: z.number().int().min(1).default(10_485_760),
  /** Bytes of files one user may keep at once; 0: no quota. */
  quota: z.number().int().min(0).default(1_073_741_824),
  /** Seconds a file is kept; 0: for ever. */
  expire_after: z.number().int().min(0).default(604_800),
  /** Seconds a slot's PUT URL stays valid. */
  slot_lifetime: z.number().int().min(1).default(600),
  /** Base URL of the PUT and GET URLs; empty: http.external_url, else https://<host>:<https_port>. */
  external_url: z
    .string()
    .refine((v) => v === '' || /^https?:\/\/[^/?#]+(\/[^?#]*)?$/.test(v), { message: 'an http:// or https:// URL without query' })
    .default(''),
  /** Directory of the files; empty: <data_dir>/http_upload/<service domain>. */
  storage_dir: z.string().default(''),
  /** Secret of the slot signatures; empty: generated once and kept under <data_dir>/http_upload. */
  secret: z.string().default(''),
});

interface Recorded {
  size: number;
  created: number;
}

export default defineModule({
  name: 'http_upload',
  config: HttpUploadConfig,
  setup(ctx) {
    const config = ctx.config;
    const domain = parseJid(config.domain.replaceAll('{host}', ctx.domain)).toString();
    if (domain.includes('@') || domain.includes('/')) throw new Error(`http_upload.domain: "${domain}" is not a domain`);
    const root = path.join(ctx.server.config.dataDir, 'http_upload');
    const signer = new SlotSigner(loadSecret(config.secret, root), domain);
    const prefix = `/upload/${domain}/`;
    const recorded = ctx.store.map<Recorded>('http_upload');
    const files = new UploadFiles({
      dir: config.storage_dir || path.join(root, domain),
      prefix,
      signer,
      expireAfter: config.expire_after,
      log: ctx.log,
      stored: (id, meta) => recorded.set(ctx.domain, parseJid(meta.owner).local, id, { size: meta.size, created: meta.created }),
      removed: async (id, meta) => void (await recorded.delete(ctx.domain, parseJid(meta.owner).local, id)),
    });
    ctx.http.route(['PUT', 'GET', 'OPTIONS'], prefix, files.handle, { maxBody: config.max_file_size });
    const base = () => (config.external_url || ctx.http.baseUrl(ctx.domain)).replace(/\/+$/, '');

    const requestSlot = async (request: Element, from: Jid): Promise<Element> => {
      if (from.domain !== ctx.domain || from.local === '') throw new StanzaError('forbidden', 'only users of this server may upload here');
      const filename = sanitiseFilename(request.attrs.filename ?? '');
      if (!filename) throw new StanzaError('bad-request', 'the file name is missing or not usable');
      const sizeText = request.attrs.size ?? '';
      const size = /^\d{1,15}$/.test(sizeText) ? Number(sizeText) : NaN;
      if (!(size > 0)) throw new StanzaError('bad-request', 'the size must be a positive number of bytes');
      if (size > config.max_file_size) {
        throw new StanzaError(
          'not-acceptable',
          `the file is too large (the limit is ${config.max_file_size} bytes)`,
          'modify',
          xml('file-too-large', { xmlns: NS_UPLOAD }, xml('max-file-size', {}, String(config.max_file_size))),
        );
      }
      const type = (request.attrs['content-type'] ?? '').trim();
      if (type && !CONTENT_TYPE.test(type)) throw new StanzaError('bad-request', 'the content type is not valid');
      if (config.quota > 0) {
        let used = 0;
        for (const file of (await recorded.all(ctx.domain, from.local)).values()) used += file.size;
        if (used + size > config.quota) throw new StanzaError('resource-constraint', `the upload quota (${config.quota} bytes) would be exceeded`, 'wait');
      }
      const id = newSlotId();
      const token = signer.sign({ id, owner: from.bare.toString(), size, type, expires: Math.floor(Date.now() / 1000) + config.slot_lifetime }, filename);
      const url = `${base()}${prefix}${id}/${encodeURIComponent(filename)}`;
      ctx.log.debug({ owner: from.bare.toString(), size }, 'upload slot given');
      return xml('slot', { xmlns: NS_UPLOAD }, xml('put', { url: `${url}?token=${token}` }), xml('get', { url }));
    };

    serveDomain(ctx, domain, {
      identity: { category: 'store', type: 'file', name: config.name },
      features: [NS_UPLOAD],
      forms: () => [form('result', NS_UPLOAD, [{ var: 'max-file-size', type: 'text-single', values: [String(config.max_file_size)] }])],
      iq: { [`get request ${NS_UPLOAD}`]: requestSlot },
    });

    const sweep = (doomed?: (meta: FileMeta) => boolean) =>
      files.sweep(doomed).then(
        (n) => n > 0 && ctx.log.info({ files: n }, 'uploaded files deleted'),
        (err: unknown) => ctx.log.warn({ err }, 'sweeping uploaded files failed'),
      );
    if (config.expire_after > 0) ctx.every(3_600_000, () => void sweep());
    // The account's rows are gone with it; its files go before the deletion is done.
    ctx.hook('account/deleted', async ({ jid }) => {
      const owner = jid.bare.toString();
      await sweep((meta) => meta.owner === owner);
    });
  },
});
