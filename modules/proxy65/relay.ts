// Relays the bytes of an activated bytestream both ways, with backpressure (a side that cannot
// write as fast pauses the other's reading), an optional rate and size limit, and an idle timeout.
import type net from 'node:net';

export interface RelayLimits {
  /** Bytes per second in each direction; 0: no limit. */
  rate: number;
  /** Bytes in both directions together; 0: no limit. */
  maxBytes: number;
  /** Milliseconds without a byte either way before both connections close; 0: never. */
  idleMs: number;
}

export type RelayEnd = 'done' | 'idle' | 'too-large' | 'error';

/** Resolves when both connections are closed, with why. */
export function relay(a: net.Socket, b: net.Socket, limits: RelayLimits): Promise<{ end: RelayEnd; bytes: number }> {
  return new Promise((resolve) => {
    let bytes = 0;
    let end: RelayEnd = 'done';
    const stop = (why: RelayEnd) => {
      if (end === 'done') end = why;
      a.destroy();
      b.destroy();
    };
    const pump = (from: net.Socket, to: net.Socket) => {
      let draining = false;
      let throttled = false;
      let sent = 0;
      const started = Date.now();
      from.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (limits.maxBytes > 0 && bytes > limits.maxBytes) return stop('too-large');
        if (!to.write(chunk)) {
          draining = true;
          from.pause();
        }
        if (limits.rate > 0) {
          sent += chunk.length;
          const ahead = (sent / limits.rate) * 1000 - (Date.now() - started);
          if (ahead > 0) {
            throttled = true;
            from.pause();
            setTimeout(() => {
              throttled = false;
              if (!draining) from.resume();
            }, ahead).unref();
          }
        }
      });
      to.on('drain', () => {
        draining = false;
        if (!throttled) from.resume();
      });
      // One side done sending: the other gets an end of stream once what is queued is written.
      from.on('end', () => to.end());
    };
    pump(a, b);
    pump(b, a);
    for (const s of [a, b]) {
      s.on('error', () => stop('error'));
      if (limits.idleMs > 0) {
        s.setTimeout(limits.idleMs);
        s.on('timeout', () => stop('idle'));
      }
    }
    let open = 2;
    const closed = () => {
      if (--open === 0) resolve({ end, bytes });
    };
    a.once('close', closed);
    b.once('close', closed);
    a.resume();
    b.resume();
  });
}

/**
 * Until its bytestream is activated, a connection is read (so a party that leaves is noticed and
 * its place freed) and what it sends is kept, up to `limit` bytes (then reading stops): XEP-0065
 * §9.1 asks to ignore, not drop, bytes sent before activation. Returns the call that stops this
 * and hands the kept bytes back to the socket, paused, for relay().
 */
export function holdEarlyBytes(socket: net.Socket, limit: number): () => void {
  const held: Buffer[] = [];
  let bytes = 0;
  const onData = (chunk: Buffer) => {
    held.push(chunk);
    bytes += chunk.length;
    if (bytes >= limit) socket.pause();
  };
  const onEnd = () => socket.destroy();
  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.resume();
  return () => {
    socket.pause();
    socket.off('data', onData);
    socket.off('end', onEnd);
    if (held.length) socket.unshift(Buffer.concat(held));
  };
}
