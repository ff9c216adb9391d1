// The BOSH endpoint (XEP-0124, XEP-0206) at /http-bind: CORS, the body size limit, session
// creation (admitted and counted like a TCP connection), and each request handed to its
// session's BoshStream by sid.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { C2sListeners } from '../c2s/listener.js';
import { clientLimits } from '../c2s/client-session.js';
import type { ServerCore } from '../module-api/core.js';
import { StreamError } from '../stream/errors.js';
import { XmlStreamError } from '../xml/parser.js';
import { parseBody, terminate, type BoshRequest } from './bosh-body.js';
import { BoshStream, type BoshTimes } from './bosh-stream.js';
import { originAllowed } from './origin.js';

export const BOSH_PATH = '/http-bind';

/** Serves BOSH; returns the function that stops it (the sessions end with the c2s ones). */
export function serveBosh(core: ServerCore, c2s: C2sListeners): () => void {
  const limits = clientLimits(core);
  const http = core.config.http;
  const log = core.log.child({ component: 'bosh' });
  const sessions = new Map<string, BoshStream>();
  // A body may carry several stanzas; each is held to the stanza limit by the parser.
  const maxBody = limits.maxStanzaBytes + 8192;

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    if (!originAllowed(core, req)) {
      log.info({ ip: req.socket.remoteAddress, origin: req.headers.origin }, 'BOSH request refused: origin not allowed');
      res.writeHead(403).end();
      return;
    }
    if (req.headers.origin !== undefined) {
      res.setHeader('Access-Control-Allow-Origin', req.headers.origin);
      res.setHeader('Vary', 'Origin');
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'Access-Control-Allow-Methods': 'POST, OPTIONS', 'Access-Control-Allow-Headers': 'Content-Type', 'Access-Control-Max-Age': '86400' });
      res.end();
      return;
    }
    res.setHeader('Content-Type', 'text/xml; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    const text = await readBody(req, maxBody);
    if (text === undefined) return void res.writeHead(413).end();
    let request: BoshRequest;
    try {
      request = parseBody(text, limits);
    } catch (err) {
      if (!(err instanceof XmlStreamError)) throw err;
      log.info({ ip: req.socket.remoteAddress, condition: err.condition, text: err.message }, 'BOSH body refused');
      // Restricted XML in a session's request is a stream error of that session.
      const sid = /\bsid=["']([0-9a-f]+)["']/.exec(text)?.[1];
      const session = sid === undefined ? undefined : sessions.get(sid);
      if (session && err.condition !== 'not-well-formed') session.close(new StreamError(err.condition, err.message));
      res.writeHead(400).end(terminate('bad-request'));
      return;
    }
    const sid = request.attrs.sid;
    if (sid === undefined) return create(req, res, request);
    const session = sessions.get(sid);
    if (!session) return void res.end(terminate('item-not-found'));
    // The sid is the session's only credential: a session begun over HTTPS stays on it.
    if (session.encrypted && !core.http.peer(req, isHttps(req)).secure) {
      log.info({ ip: req.socket.remoteAddress }, 'BOSH request refused: an encrypted session over plain HTTP');
      return void res.writeHead(403).end(terminate('policy-violation'));
    }
    session.request(request, res);
  };

  const create = (req: IncomingMessage, res: ServerResponse, request: BoshRequest) => {
    const { attrs } = request;
    const rid = Number(attrs.rid);
    const wait = Number(attrs.wait);
    if (!Number.isSafeInteger(rid) || rid < 0 || !Number.isFinite(wait) || wait < 0) {
      return void res.writeHead(400).end(terminate('bad-request'));
    }
    const peer = core.http.peer(req, isHttps(req));
    if (!c2s.admit(peer.ip)) return void res.end(terminate('policy-violation'));
    const times: BoshTimes = {
      wait: Math.min(Math.floor(wait), http.bosh_max_wait),
      hold: Math.min(Math.max(Number(attrs.hold) || 1, 0), 1),
      inactivity: http.bosh_inactivity,
      maxpause: http.bosh_max_pause,
    };
    const sid = randomBytes(16).toString('hex');
    let stream: BoshStream | undefined;
    c2s.open(peer.ip, false, (sessionLog, events) => {
      stream = new BoshStream(sid, request, times, peer.secure, sessionLog, events, (gone) => sessions.delete(gone.sid));
      sessions.set(sid, stream);
      return stream;
    });
    stream!.request(request, res);
  };

  const remove = core.http.route(['POST', 'OPTIONS'], BOSH_PATH, handler, { maxBody });
  return remove;
}

/** Whether the request came in over the HTTPS listener. */
function isHttps(req: IncomingMessage): boolean {
  return (req.socket as { encrypted?: boolean }).encrypted === true;
}

/** The request's body as text, or undefined past `max` bytes. */
async function readBody(req: IncomingMessage, max: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
