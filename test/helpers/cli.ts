// The `starling` command (the built dist/src/cli.js, as installed) run as a real process, and
// configuration files for it in temporary directories. The npm test scripts build first.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { LAUNCH_FLAGS } from '../../src/idle-collector.js';

const CLI = path.join(new URL('../..', import.meta.url).pathname, 'dist/src/cli.js');

/** The built CLI, or a clear failure when there is none. */
function cli(): string {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test and the test:* scripts build first)`);
  return CLI;
}

/**
 * The environment of a spawned CLI: STARLING_CONFIG unset (only --config counts), and without
 * the process-tracking hook tap puts into NODE_OPTIONS (coverage is off; it triples a start-up).
 */
function cliEnv(): NodeJS.ProcessEnv {
  const nodeOptions = (process.env.NODE_OPTIONS ?? '')
    .split(/\s+/)
    .filter((o) => o && !o.includes('@tapjs/processinfo'))
    .join(' ');
  return { ...process.env, NODE_OPTIONS: nodeOptions, STARLING_CONFIG: '' };
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/**
 * A temporary directory (removed at teardown) named after `name`, holding `starling.toml`
 * with the text `toml(dir)`.
 */
export function configDir(t: Teardown, name: string, toml: (dir: string) => string): { dir: string; config: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `starling-${name}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = path.join(dir, 'starling.toml');
  writeFileSync(config, toml(dir));
  return { dir, config };
}

export interface CliResult {
  code: number | null;
  out: string;
  err: string;
}

/**
 * Runs `starling <args>` to its end, `input` on its stdin; STARLING_CONFIG is unset (only
 * --config counts). With `timeoutMs`, a command still running then is killed (code null) and
 * `ms` says how long it ran.
 */
export function runStarling(args: string[], options: { cwd?: string; input?: string; timeoutMs?: number } = {}): CliResult & { ms: number } {
  const started = Date.now();
  const r = spawnSync(process.execPath, [cli(), ...args], {
    cwd: options.cwd,
    input: options.input,
    timeout: options.timeoutMs,
    killSignal: 'SIGKILL',
    encoding: 'utf8',
    env: cliEnv(),
  });
  return { code: r.status, out: r.stdout, err: r.stderr, ms: Date.now() - started };
}

/**
 * Runs `starling <args>` on a pseudo-terminal (util-linux `script`), so that it sees a TTY on
 * stdin and stderr: each time its output ends with a prompt of `answers`, in order, the answer
 * is typed (with a carriage return, as a terminal in raw mode sends). Resolves at its exit with
 * all it printed on the terminal.
 */
export function runOnTerminal(args: string[], answers: [prompt: RegExp, answer: string][], options: { cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const command = [process.execPath, cli(), ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawn('script', ['--quiet', '--return', '--command', command, '/dev/null'], { cwd: options.cwd, env: cliEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let answered = 0;
  let seen = 0;
  child.stdout!.on('data', (d: Buffer) => {
    out += d;
    const next = answers[answered];
    if (next && next[0].test(out.slice(seen))) {
      seen = out.length;
      answered++;
      child.stdin!.write(`${next[1]}\r`);
    }
  });
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    }),
  );
}

/**
 * Like runStarling, without blocking this process: for a command that talks to a server the
 * test runs itself (a DNS server, ...).
 */
export function runStarlingAsync(args: string[], options: { cwd?: string } = {}): Promise<CliResult & { ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [cli(), ...args], { cwd: options.cwd, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (err += d));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, out, err, ms: Date.now() - started })));
}

export interface RunningStarling {
  child: ChildProcess;
  /** Its c2s STARTTLS port. */
  port: number;
  /** All it has printed so far. */
  output(): string;
}

/**
 * `starling start --config <config>`, with the V8 flags of its launchers; resolves once it says it is running, with the port of its
 * c2s STARTTLS listener (from its log, which the configuration must have as JSON).
 */
export function startStarling(config: string, options: { cwd?: string; timeoutMs?: number } = {}): Promise<RunningStarling> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const child = spawn(process.execPath, [...LAUNCH_FLAGS, cli(), 'start', '--config', config], { cwd: options.cwd, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      // Not left running behind a failed test.
      child.kill('SIGKILL');
      reject(new Error(`no start within ${timeoutMs / 1000} s:\n${out}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      out += d;
      const running = /"msg":"Starling is running"/.test(out);
      const listening = /"port":(\d+),"tls":"starttls","msg":"c2s listening"/.exec(out);
      if (running && listening) {
        clearTimeout(timer);
        resolve({ child, port: Number(listening[1]), output: () => out });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code ?? signal}) before it started:\n${out}`));
    });
  });
}

/** A loopback port nothing listens on (bound, then closed). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * The HTTP server (http_upload) and the SOCKS5 proxy (proxy65), both in the default
 * modules_enabled, on free loopback ports instead of 5280, 5281 and 5000 (the proxy on
 * `proxyPort`): TOML tables for a configuration that keeps the default modules.
 */
export const loopbackServicesToml = (proxyPort = 0) => `[http]
interfaces = ["127.0.0.1"]
port = 0
https_interfaces = ["127.0.0.1"]
https_port = 0
[modules.proxy65]
interfaces = ["127.0.0.1"]
port = ${proxyPort}
`;

/** The configuration of a `starling start` on loopback, free ports, JSON logs, data in `dir`. */
export function loopbackServerToml(dir: string): string {
  return `data_dir = "${dir}/data"
[log]
format = "json"
[accounts]
scram_iterations = 4096
[c2s]
listeners = [{ interfaces = ["127.0.0.1"], port = 0, direct_tls = false }]
[s2s]
listeners = [{ interfaces = ["127.0.0.1"], port = 0, direct_tls = false }]
${loopbackServicesToml()}`;
}
