// Opens the TCP connection of an outgoing stream: each target in order until one answers,
// direct TLS for _xmpps-server targets, all within the time left.
import net from 'node:net';
import tls from 'node:tls';
import type { ConnectTarget } from './route-target.js';

export interface Connected {
  socket: net.Socket;
  target: ConnectTarget;
}

export class ConnectError extends Error {
  constructor(
    message: string,
    /** True when time ran out (remote-server-timeout rather than remote-server-not-found). */
    readonly timedOut: boolean,
  ) {
    super(message);
  }
}

/** Tries the targets in order; `tlsOptions(target)` gives the options of a direct TLS target. */
export async function connectAny(
  targets: readonly ConnectTarget[],
  tlsOptions: (target: ConnectTarget) => tls.ConnectionOptions,
  deadline: number,
  onAttemptFailed: (target: ConnectTarget, reason: string) => void,
): Promise<Connected> {
  let last = 'no address to connect to';
  for (const target of targets) {
    const left = deadline - Date.now();
    if (left <= 0) throw new ConnectError(`no connection within the time allowed (last: ${last})`, true);
    try {
      const socket = await connectOne(target, target.directTls ? tlsOptions(target) : undefined, left);
      return { socket, target };
    } catch (err) {
      last = `${target.host}:${target.port}${target.directTls ? ' (direct TLS)' : ''}: ${(err as Error).message}`;
      onAttemptFailed(target, (err as Error).message);
      if ((err as NodeJS.ErrnoException).code === 'ETIMEDOUT' && Date.now() >= deadline) throw new ConnectError(last, true);
    }
  }
  throw new ConnectError(last, false);
}

function connectOne(target: ConnectTarget, tlsOptions: tls.ConnectionOptions | undefined, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = tlsOptions ? tls.connect({ ...tlsOptions, host: target.host, port: target.port }) : net.connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error(`no answer within ${Math.round(timeoutMs / 100) / 10} s`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    timer.unref();
    socket.once(tlsOptions ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      // Until the stream takes the socket (a tick later), an error must not go unhandled.
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
  });
}
