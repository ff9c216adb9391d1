// A cap on the connections open at once from one IP address (HTTP, the SOCKS5 proxy): a
// connection is counted until it closes.
import type net from 'node:net';

export class PerIpCap {
  private readonly open = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Counts `socket` until it closes, or returns false (not counted) when its address is at the cap. */
  admit(socket: net.Socket): boolean {
    const ip = socket.remoteAddress ?? '?';
    const count = (this.open.get(ip) ?? 0) + 1;
    if (count > this.max) return false;
    this.open.set(ip, count);
    socket.once('close', () => {
      const left = (this.open.get(ip) ?? 1) - 1;
      if (left <= 0) this.open.delete(ip);
      else this.open.set(ip, left);
    });
    return true;
  }
}
