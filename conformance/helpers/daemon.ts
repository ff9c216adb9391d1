// What the federation interop runs share to drive a third-party server (Prosody, ejabberd) as a
// child process: skip-or-fail when it is missing, free loopback ports, waiting for a port,
// running as the server's own system user when the tests run as root, a self-signed
// certificate, and stopping it (SIGTERM, then SIGKILL), every step bounded in time.
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, readdirSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** Under `.ci/run` a missing peer is a failure, not a skip (see DESIGN.md, Tests). */
export const requireServices = process.env.STARLING_REQUIRE_SERVICES === '1';

export const asRoot = process.getuid?.() === 0;

/** The part of a tap Test these helpers use. */
export interface Gate {
  fail(message: string): unknown;
  plan(n: number, comment?: string): void;
  teardown(fn: () => unknown): void;
  comment(...message: unknown[]): void;
}

/**
 * Whether to run, given what is missing (`problem`, undefined when nothing is): when something
 * is, fails under STARLING_REQUIRE_SERVICES=1 and is skipped otherwise, saying why.
 */
export function gate(t: Pick<Gate, 'fail' | 'plan'>, what: string, problem: string | undefined): boolean {
  if (!problem) return true;
  if (requireServices) t.fail(`${what} cannot run, and STARLING_REQUIRE_SERVICES=1 makes that a failure: ${problem}`);
  else t.plan(0, `${what} skipped: ${problem}`);
  return false;
}

/** The path of `command` on PATH, or undefined. */
export function which(command: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8', timeout: 5000 });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** The installed version of a Debian package, or undefined. */
export function debianVersion(pkg: string): string | undefined {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8', timeout: 5000 });
  return r.status === 0 && r.stdout ? r.stdout : undefined;
}

/** Whether a system user exists. */
export function userExists(user: string): boolean {
  return spawnSync('id', ['-u', user], { timeout: 5000 }).status === 0;
}

/** A free TCP port on loopback (bound and released: good enough for a test). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Waits until something accepts connections on 127.0.0.1:`port`; `gaveUp` ends it early (the process exited). */
export async function waitForPort(name: string, port: number, timeoutMs: number, gaveUp: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gaveUp()) throw new Error(`${name} exited before listening on ${port}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${name} did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

/** The command line to run `argv` as `user` when the tests run as root (runuser), as is otherwise. */
export function asUser(user: string, argv: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', user, '--', ...argv]] : [argv[0]!, argv.slice(1)];
}

/** As root: `dir` and everything in it belong to `user` (mode 750 on `dir`). Otherwise nothing. */
export function handOver(dir: string, user: string): void {
  if (!asRoot) return;
  const uid = Number(spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', user], { encoding: 'utf8' }).stdout.trim());
  const walk = (p: string) => {
    chownSync(p, uid, gid);
    if (statSync(p).isDirectory()) for (const entry of readdirSync(p)) walk(path.join(p, entry));
  };
  walk(dir);
  chmodSync(dir, 0o750);
}

/**
 * A self-signed certificate for `domain` (CN, and DNS-ID unless `subjectAltName` says
 * otherwise, e.g. "IP:127.0.0.1"), P-256, made with openssl in `dir`.
 */
export function selfSigned(dir: string, domain: string, subjectAltName = `DNS:${domain}`): { cert: string; key: string } {
  const cert = path.join(dir, `${domain}.crt`);
  const key = path.join(dir, `${domain}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      `/CN=${domain}`,
      '-addext',
      `subjectAltName=${subjectAltName}`,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

/**
 * Stops a server: SIGTERM to `pid` (the server's own process, when it is not the child we
 * spawned, e.g. behind runuser or su) and, unless `childToo` is false, to `child`; SIGKILL to
 * both after `graceMs`. `exited` is the child's exit. With `childToo` false the child (a
 * wrapper script) is left to end when the server does, so `exited` means the server is done.
 * With `group` (a child spawned with `detached: true`, so leading its own process group) the
 * signals for the child go to its whole group: the wrapper and what it started.
 */
export async function terminate(child: ChildProcess, exited: Promise<void>, options: { pid?: number; graceMs?: number; childToo?: boolean; group?: boolean } = {}): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const { pid, graceMs = 5000, childToo = true, group = false } = options;
  const signal = (sig: NodeJS.Signals, toChild: boolean) => {
    if (pid && pid !== child.pid) {
      try {
        process.kill(pid, sig);
      } catch {
        // gone already
      }
    }
    if (!toChild && pid) return;
    if (group && child.pid) {
      try {
        process.kill(-child.pid, sig);
      } catch {
        // gone already
      }
    } else child.kill(sig);
  };
  signal('SIGTERM', childToo);
  const timer = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), graceMs).unref());
  if (!(await Promise.race([exited.then(() => true), timer]))) {
    signal('SIGKILL', true);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 2000).unref())]);
  }
}
