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
