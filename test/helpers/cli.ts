// The `starling` command (src/cli.ts under tsx) run as a real process, and configuration files
// for it in temporary directories.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const CLI = path.join(new URL('../..', import.meta.url).pathname, 'src/cli.ts');
// Resolved here, since the commands may run in another directory.
const tsx = import.meta.resolve('tsx');

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
  const r = spawnSync(process.execPath, ['--import', tsx, CLI, ...args], {
    cwd: options.cwd,
    input: options.input,
    timeout: options.timeoutMs,
    killSignal: 'SIGKILL',
    encoding: 'utf8',
    env: { ...process.env, STARLING_CONFIG: '' },
  });
  return { code: r.status, out: r.stdout, err: r.stderr, ms: Date.now() - started };
}

export interface RunningStarling {
  child: ChildProcess;
  /** Its c2s STARTTLS port. */
  port: number;
  /** All it has printed so far. */
  output(): string;
}

/**
 * `starling start --config <config>`; resolves once it says it is running, with the port of its
 * c2s STARTTLS listener (from its log, which the configuration must have as JSON).
 */
export function startStarling(config: string, options: { cwd?: string; timeoutMs?: number } = {}): Promise<RunningStarling> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const child = spawn(process.execPath, ['--import', tsx, CLI, 'start', '--config', config], { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start within ${timeoutMs / 1000} s:\n${out}`)), timeoutMs);
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
  });
}
