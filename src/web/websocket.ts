// The WebSocket endpoint (RFC 7395) at /xmpp-websocket on the HTTP listeners: the upgrade
// (subprotocol 'xmpp' required, Origin checked, no cookies), then a client session over a
// WebSocketStream, admitted and counted like a TCP connection.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import type { C2sListeners } from '../c2s/listener.js';
import { clientLimits } from '../c2s/client-session.js';
import type { ServerCore } from '../module-api/core.js';
import { refuseUpgrade } from '../net/http.js';
import { originAllowed } from './origin.js';
import { WebSocketStream, type WebSocketPeer } from './websocket-stream.js';

export const WEBSOCKET_PATH = '/xmpp-websocket';

/** Serves XMPP over WebSocket; returns the function that stops it. */
export function serveWebSocket(core: ServerCore, c2s: C2sListeners): () => void {
  const limits = clientLimits(core);
  const wss = new WebSocketServer({
    noServer: true,
    // A message is one element: the stanza size limit (plus room for the parser's own check
    // to be the one that answers with a stream error just past it).
    maxPayload: limits.maxStanzaBytes + 1024,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has('xmpp') ? 'xmpp' : false),
  });
  const log = core.log.child({ component: 'websocket' });
  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer, secureListener: boolean) => {
    const protocols = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim());
    if (!protocols.includes('xmpp')) {
      log.info({ ip: req.socket.remoteAddress }, 'WebSocket refused: no xmpp subprotocol');
      return refuseUpgrade(socket, 400, 'the xmpp subprotocol (RFC 7395) is required');
    }
    if (!originAllowed(core, req)) {
      log.info({ ip: req.socket.remoteAddress, origin: req.headers.origin }, 'WebSocket refused: origin not allowed');
      return refuseUpgrade(socket, 403, 'origin not allowed');
    }
    const { ip, secure } = core.http.peer(req, secureListener);
    const tlsSocket = secureListener && req.socket instanceof tls.TLSSocket ? req.socket : undefined;
    wss.handleUpgrade(req, socket, head, (ws) => accept(ws, ip, { secure, tlsSocket, socket }));
  };
  // Apart from upgrade(): the session keeps its transport factory, which must not hold the request.
  const accept = (ws: WebSocket, ip: string, peer: WebSocketPeer) => {
    // The same cap on unauthenticated connections per address as on TCP.
    if (!c2s.admit(ip)) return ws.close(1013, 'too many connections from this address');
    c2s.open(ip, false, (sessionLog, events) => new WebSocketStream(ws, peer, limits, sessionLog, events));
  };
  const remove = core.http.upgrade(WEBSOCKET_PATH, upgrade);
  return () => {
    remove();
    wss.close();
  };
}
