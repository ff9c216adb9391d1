// Runs Debian's Prosody for the federation interop tests: its own configuration, data,
// certificates and log in a temporary directory, its own loopback ports, static s2s routes
// through mod_test_s2s_routes.lua (Prosody only knows DNS), started in the foreground and
// stopped at teardown (SIGTERM, then SIGKILL), every step bounded in time.
//
// Prosody refuses to run as root: as root it runs as the "prosody" user (runuser), with the
// directory handed to that user; otherwise as the current user.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { asRoot, asUser, debianVersion, freePort, gate, handOver, requireServices, terminate, userExists, waitForPort, which, type Gate } from '../helpers/daemon.js';

export { freePort, requireServices };
const PLUGIN = fileURLToPath(new URL('./mod_test_s2s_routes.lua', import.meta.url));
const STARTUP_MS = 20_000;

/** What is missing to run Prosody here, or undefined when it can run. */
export function prosodyProblem(): string | undefined {
  if (!which('prosody') || !which('prosodyctl')) return 'prosody is not installed (apt-get install -y prosody)';
  if (asRoot) {
    if (!which('runuser')) return 'runuser is missing (Prosody refuses to run as root)';
    if (!userExists('prosody')) return 'there is no "prosody" user to run it as';
  }
  const version = debianVersion('prosody');
  if (version && !/^0\.1[2-9]|^[1-9]/.test(version)) return `prosody ${version} is older than 0.12`;
  return undefined;
}

/**
 * Whether to run: when Prosody cannot run, fails under STARLING_REQUIRE_SERVICES=1 and is
 * skipped otherwise, saying why.
 */
export function needProsody(t: Gate, what: string): boolean {
  return gate(t, what, prosodyProblem());
}

export function prosodyVersion(): string {
  return debianVersion('prosody') ?? 'unknown';
}

export interface ProsodyOptions {
  domain: string;
  c2sPort: number;
  s2sPort: number;
  /** Remote domain -> [ip, port] for its outgoing s2s connections. */
  routes: Record<string, [string, number]>;
  /** s2s_secure_auth: only servers with valid certificates. */
  secureAuth: boolean;
  /** PEM files (copied into Prosody's directory). */
  certificate: string;
  key: string;
  /** A CA to trust for s2s (copied), besides none: the system store is not used here. */
  caFile?: string;
  users: Record<string, string>;
  /** Modules enabled besides those every run has (pep, private, mam, ...). */
  extraModules?: string[];
}

export interface RunningProsody {
  dir: string;
  logFile: string;
  log(): string;
  stop(): Promise<void>;
}

export async function startProsody(t: Gate, options: ProsodyOptions): Promise<RunningProsody> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'starling-prosody-'));
  const logFile = path.join(dir, 'prosody.log');
  const config = path.join(dir, 'prosody.cfg.lua');
  mkdirSync(path.join(dir, 'data'));
  mkdirSync(path.join(dir, 'plugins'));
  copyFileSync(PLUGIN, path.join(dir, 'plugins', 'mod_test_s2s_routes.lua'));
  copyFileSync(options.certificate, path.join(dir, 'prosody.crt'));
  copyFileSync(options.key, path.join(dir, 'prosody.key'));
  if (options.caFile) copyFileSync(options.caFile, path.join(dir, 'ca.pem'));
  const lua = (s: string) => JSON.stringify(s);
  const routes = Object.entries(options.routes)
    .map(([domain, [ip, port]]) => `[${lua(domain)}] = { ${lua(ip)}, ${port} }`)
    .join('; ');
  writeFileSync(
    config,
    `-- Written by conformance/prosody/s2s.test.ts for one run; deleted after it.
pidfile = ${lua(path.join(dir, 'prosody.pid'))}
data_path = ${lua(path.join(dir, 'data'))}
plugin_paths = { ${lua(path.join(dir, 'plugins'))} }
admin_socket = ${lua(path.join(dir, 'prosody.sock'))}
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { ${options.c2sPort} }
c2s_direct_tls_ports = { }
legacy_ssl_ports = { }
s2s_ports = { ${options.s2sPort} }
s2s_direct_tls_ports = { }
http_ports = { }
https_ports = { }
modules_enabled = { "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "version"; "vcard"; "posix"; "test_s2s_routes"${(options.extraModules ?? []).map((m) => `; ${lua(m)}`).join('')} }
authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = ${options.secureAuth}
use_ipv6 = false
s2s_timeout = 20
log = { { levels = { min = "debug" }, to = "file", filename = ${lua(logFile)} } }
ssl = { certificate = ${lua(path.join(dir, 'prosody.crt'))}; key = ${lua(path.join(dir, 'prosody.key'))}${options.caFile ? `; cafile = ${lua(path.join(dir, 'ca.pem'))}` : ''} }
test_s2s_routes = { ${routes} }
VirtualHost ${lua(options.domain)}
`,
  );
  handOver(dir, 'prosody');
  const cleanup = () => rmSync(dir, { recursive: true, force: true });

  for (const [user, password] of Object.entries(options.users)) {
    const r = spawnSync(...asProsody(['prosodyctl', '--config', config, 'register', user, options.domain, password]), { encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) {
      cleanup();
      throw new Error(`prosodyctl register ${user}@${options.domain} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}`);
    }
  }

  const [command, args] = asProsody(['prosody', '--config', config, '-F']);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const readLog = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      const pidFile = path.join(dir, 'prosody.pid');
      await terminate(child, exited, { pid: existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : undefined });
      cleanup();
    })());
  t.teardown(stop);

  try {
    await waitForPort('prosody', options.c2sPort, STARTUP_MS, () => child.exitCode !== null);
    await waitForPort('prosody', options.s2sPort, STARTUP_MS, () => child.exitCode !== null);
  } catch (err) {
    const detail = `${(err as Error).message}\n--- prosody output ---\n${output}\n--- prosody.log (tail) ---\n${readLog().split('\n').slice(-40).join('\n')}`;
    await stop();
    throw new Error(detail);
  }
  return { dir, logFile, log: readLog, stop };
}

/** The command line to run something as Prosody's user. */
function asProsody(argv: string[]): [string, string[]] {
  return asUser('prosody', argv);
}
