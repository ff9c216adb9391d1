// Starts a listener on one address: resolves once it listens, rejects with the error (EADDRINUSE,
// EACCES) otherwise. An IPv6 address listens on IPv6 only, so '0.0.0.0' and '::' can both be given.
import type net from 'node:net';

export function listenOn(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, ipv6Only: host.includes(':') }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** A listen error that only means this address (family) is not available here, e.g. no IPv6: skipped, not fatal. */
export function addressUnavailable(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL';
}
