// The server side of the SOCKS5 handshake (RFC 1928) as XEP-0065 uses it: the "no
// authentication" method, then CONNECT to a DOMAINNAME that is SHA1(SID + initiator JID + target
// JID) in hex, port 0. Resolves with the hash (lower case) once the request is read; the caller
// answers it with accept() or refuse(). Bytes the client sent after its request stay in the socket.
import type net from 'node:net';

const VERSION = 5;
const NO_AUTH = 0;
const NO_ACCEPTABLE_METHOD = 0xff;
const CONNECT = 1;
const DOMAINNAME = 3;

/** RFC 1928 §6 reply codes used here. */
export const Reply = {
  succeeded: 0,
  failure: 1,
  notAllowed: 2,
  commandNotSupported: 7,
  addressTypeNotSupported: 8,
} as const;

export class HandshakeError extends Error {}

/** Reads exactly what the handshake needs from `socket`, then hands the rest back. */
class Reader {
  private buffer: Buffer = Buffer.alloc(0);
  private wanted: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(private readonly socket: net.Socket) {
    socket.on('data', this.onData);
    socket.once('end', this.onEnd);
  }

  private readonly onData = (chunk: Buffer) => {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    // A handshake is a few hundred bytes at most; anything past that waits in the kernel.
    if (this.buffer.length > 1024) this.socket.pause();
    this.serve();
  };

  private readonly onEnd = () => {
    this.failure = new HandshakeError('the client closed during the handshake');
    this.serve();
  };

  private serve(): void {
    const w = this.wanted;
    if (!w) return;
    if (this.buffer.length >= w.n) {
      this.wanted = undefined;
      const out = this.buffer.subarray(0, w.n);
      this.buffer = this.buffer.subarray(w.n);
      w.resolve(out);
    } else if (this.failure) {
      this.wanted = undefined;
      w.reject(this.failure);
    }
  }

  read(n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.wanted = { n, resolve, reject };
      this.serve();
    });
  }

  /** Stops reading; what was read past the handshake goes back into the socket, paused. */
  release(): void {
    this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    if (this.buffer.length) this.socket.unshift(this.buffer);
    this.buffer = Buffer.alloc(0);
  }
}

function reply(code: number, address: Buffer): Buffer {
  // BND.ADDR and BND.PORT echo the request (XEP-0065 §6.3.2).
  return Buffer.concat([Buffer.from([VERSION, code, 0, DOMAINNAME, address.length]), address, Buffer.from([0, 0])]);
}

export interface Request {
  /** DST.ADDR as sent, lower-cased. */
  hash: string;
  accept(): void;
  refuse(code: number): void;
}

/**
 * Reads the greeting and the request. Rejects with a HandshakeError (after answering the client
 * as RFC 1928 says, where it says something) for a request the proxy does not serve.
 */
export async function readRequest(socket: net.Socket): Promise<Request> {
  const reader = new Reader(socket);
  try {
    const [version, count] = await reader.read(2);
    if (version !== VERSION) throw new HandshakeError(`not SOCKS5 (version ${version})`);
    const methods = await reader.read(count!);
    if (!methods.includes(NO_AUTH)) {
      socket.end(Buffer.from([VERSION, NO_ACCEPTABLE_METHOD]));
      throw new HandshakeError('the client offers no method without authentication');
    }
    socket.write(Buffer.from([VERSION, NO_AUTH]));
    const [v, command, , type] = await reader.read(4);
    if (v !== VERSION) throw new HandshakeError(`not SOCKS5 (version ${v})`);
    if (type !== DOMAINNAME) {
      socket.end(reply(Reply.addressTypeNotSupported, Buffer.alloc(0)));
      throw new HandshakeError(`address type ${type} (XEP-0065 uses DOMAINNAME)`);
    }
    const [length] = await reader.read(1);
    const address = Buffer.from(await reader.read(length!));
    await reader.read(2); // DST.PORT, 0 in XEP-0065 and ignored (§9.1 allows it)
    if (command !== CONNECT) {
      socket.end(reply(Reply.commandNotSupported, address));
      throw new HandshakeError(`command ${command} (only CONNECT is served)`);
    }
    reader.release();
    return {
      hash: address.toString('latin1').toLowerCase(),
      accept: () => void socket.write(reply(Reply.succeeded, address)),
      refuse: (code) => void socket.end(reply(code, address)),
    };
  } catch (err) {
    reader.release();
    throw err;
  }
}
