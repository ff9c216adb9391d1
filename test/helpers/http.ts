// One HTTP(S) request with the headers a test chooses (Host included, which fetch() does not
// let a caller set), the whole answer collected.
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { gunzipSync } from 'node:zlib';
import type { TestServer } from './harness.js';

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body, gunzipped when it came gzipped. */
  body: Buffer;
  text: string;
}

export function httpGet(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<HttpAnswer> {
  const u = new URL(url);
  const get = u.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = get({ host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method, headers, rejectUnauthorized: false, servername: 'localhost' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        const body = res.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The test server's plain and TLS HTTP base URLs, by the name "localhost" (a served host). */
export function httpBases(ts: TestServer): { http: string; https: string } {
  const plain = ts.server.httpAddresses.find((a) => !a.secure)!;
  const secure = ts.server.httpAddresses.find((a) => a.secure)!;
  return { http: `http://localhost:${plain.port}`, https: `https://localhost:${secure.port}` };
}
