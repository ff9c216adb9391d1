// TLS for server connections. Both sides present the certificate of the local domain and
// validate the peer's against the trust anchors: the system's (Node's bundled roots,
// tls.rootCertificates) plus the configured `ca_files`. Nothing is rejected during the
// handshake (rejectUnauthorized: false): the verdict (`authorized`) and the identity check
// (identity.ts) decide between SASL EXTERNAL, dialback, or refusing under secure_auth.
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import tls, { createSecureContext, type SecureContext } from 'node:tls';
import { constants } from 'node:crypto';
import { domainToASCII } from 'node:url';
import type { Certificates, LoadedCertificate } from '../net/certificates.js';

const SECURE_OPTIONS = constants.SSL_OP_NO_RENEGOTIATION | constants.SSL_OP_CIPHER_SERVER_PREFERENCE;

export class S2sTls {
  /** Trust anchors, PEM. */
  private readonly ca: string[];
  private readonly files = new WeakMap<LoadedCertificate, { cert: Buffer; key: Buffer }>();
  private readonly contexts = new WeakMap<LoadedCertificate, SecureContext>();

  constructor(
    private readonly certificates: Certificates,
    caFiles: readonly string[],
    private readonly minVersion: 'TLSv1.2' | 'TLSv1.3',
  ) {
    this.ca = [...tls.rootCertificates, ...caFiles.map(readCaFile)];
  }

  /**
   * Options of a TLS server (the direct TLS listener, the STARTTLS upgrades) that asks for
   * client certificates. Made once per server: a context with every anchor costs ~70 ms.
   */
  serverOptions(): tls.TlsOptions {
    const first = this.certificates.all()[0];
    return {
      minVersion: this.minVersion,
      secureOptions: SECURE_OPTIONS,
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: ['xmpp-server'],
      // OpenSSL verifies the client certificate against the store of the context SNI picked,
      // so every context carries the trust anchors.
      SNICallback: (servername, cb) => {
        const cert = this.certificates.get(servername.toLowerCase()) ?? this.certificates.all()[0];
        cb(null, cert ? this.contextFor(cert) : undefined);
      },
      // The default context (a peer sending no SNI): the first domain's certificate.
      ...(first ? this.pem(first) : {}),
      ca: this.ca,
    };
  }

  /**
   * The server side of STARTTLS on an incoming stream: hands the raw socket to a tls.Server
   * that never listens (one for all upgrades, its default context trusting every anchor:
   * Prosody, for one, sends no SNI with STARTTLS), which verifies the client certificate and
   * reports it as `authorized`. Its secure connections are told apart by their TCP 4-tuple,
   * unique among live connections.
   */
  acceptTls(raw: net.Socket, handshakeTimeoutMs: number): Promise<tls.TLSSocket> {
    const server = (this.upgrades ??= this.upgradeServer(handshakeTimeoutMs));
    const key = tupleOf(raw);
    return new Promise((resolve, reject) => {
      const done = () => {
        this.pending.delete(key);
        raw.off('close', onClose);
      };
      const onClose = () => (done(), reject(new Error('the connection closed during the TLS handshake')));
      raw.once('close', onClose);
      this.pending.set(key, { resolve: (s) => (done(), resolve(s)), reject: (e) => (done(), reject(e)) });
      server.emit('connection', raw);
    });
  }

  private upgrades: tls.Server | undefined;
  private readonly pending = new Map<string, { resolve(s: tls.TLSSocket): void; reject(e: Error): void }>();

  private upgradeServer(handshakeTimeoutMs: number): tls.Server {
    const server = tls.createServer({ ...this.serverOptions(), handshakeTimeout: handshakeTimeoutMs || 120_000 });
    server.on('secureConnection', (socket: tls.TLSSocket) => this.pending.get(tupleOf(socket))?.resolve(socket));
    server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => this.pending.get(tupleOf(socket))?.reject(err));
    return server;
  }

  /** Client options to reach `remote` as `local`: SNI, our certificate, the trust anchors. */
  clientOptions(local: string, remote: string, directTls: boolean): tls.ConnectionOptions {
    const cert = this.certificates.get(local);
    return {
      servername: domainToASCII(remote) || remote,
      // Our certificate and the trust anchors, in a context made once per certificate.
      secureContext: cert ? this.contextFor(cert) : this.anchorsOnly(),
      rejectUnauthorized: false,
      // The identity is checked by identity.ts (DNS-ID, SRV-ID, XmppAddr), not Node's HTTPS rules.
      checkServerIdentity: () => undefined,
      ...(directTls ? { ALPNProtocols: ['xmpp-server'] } : {}),
    };
  }

  private anchorsContext: SecureContext | undefined;
  private anchorsOnly(): SecureContext {
    return (this.anchorsContext ??= createSecureContext({ ca: this.ca, minVersion: this.minVersion }));
  }

  private contextFor(cert: LoadedCertificate): SecureContext {
    let context = this.contexts.get(cert);
    if (!context) {
      context = createSecureContext({ ...this.pem(cert), ca: this.ca, minVersion: this.minVersion, secureOptions: SECURE_OPTIONS });
      this.contexts.set(cert, context);
    }
    return context;
  }

  private pem(cert: LoadedCertificate): { cert: Buffer; key: Buffer } {
    let files = this.files.get(cert);
    if (!files) {
      files = { cert: readFileSync(cert.certPath), key: readFileSync(cert.keyPath) };
      this.files.set(cert, files);
    }
    return files;
  }
}

function tupleOf(socket: net.Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}|${socket.localAddress}|${socket.localPort}`;
}

/** A configured CA file, with an error that says which setting is wrong. */
function readCaFile(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`s2s.ca_files: cannot read ${file}: ${(err as Error).message}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`s2s.ca_files: ${file} holds no PEM certificate`);
  return pem;
}
