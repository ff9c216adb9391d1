// External services for tests (PostgreSQL, Redis): used when reachable; skipped with a clear
// message when not, unless STARLING_REQUIRE_SERVICES=1 (CI), where a missing one fails.
import net from 'node:net';

export const POSTGRES_URL = process.env.STARLING_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.STARLING_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15';

export const servicesRequired = process.env.STARLING_REQUIRE_SERVICES === '1';

function reachable(url: string, defaultPort: number): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: u.hostname, port: Number(u.port || defaultPort) });
    socket.setTimeout(1000);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
  });
}

export const postgresReachable = () => reachable(POSTGRES_URL, 5432);
export const redisReachable = () => reachable(REDIS_URL, 6379);

/**
 * Whether to run the cases that need a service. Under STARLING_REQUIRE_SERVICES=1 a missing
 * service fails the test; otherwise it is skipped, saying so.
 */
export async function useService(t: { fail(msg: string): void; comment(msg: string): void }, name: string, isReachable: () => Promise<boolean>, where: string): Promise<boolean> {
  if (await isReachable()) return true;
  if (servicesRequired) t.fail(`${name} is required (STARLING_REQUIRE_SERVICES=1) but not reachable at ${where}`);
  else t.comment(`SKIPPED: ${name} not reachable at ${where}; set it up (or run .ci/run) to run these cases`);
  return false;
}
