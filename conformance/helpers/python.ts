// Interop runs driven by Python client libraries from Debian packages (python3-slixmpp, ...).
// Debian installs them for the system interpreter, so scripts run under /usr/bin/python3, never
// whatever python3 comes first on PATH (pyenv and virtualenvs do not see Debian's packages).
import { spawn, spawnSync } from 'node:child_process';

export const SYSTEM_PYTHON = process.env.STARLING_PYTHON ?? '/usr/bin/python3';

/** Under `.ci/run` a missing service or library is a failure, not a skip (see DESIGN.md, Tests). */
export const requireServices = process.env.STARLING_REQUIRE_SERVICES === '1';

export interface PythonCheck {
  ok: boolean;
  /** Why it is unusable, or the module's version when it is. */
  detail: string;
}

/** Whether `SYSTEM_PYTHON` exists and can import `module`. */
export function checkPythonModule(module: string): PythonCheck {
  const probe = spawnSync(SYSTEM_PYTHON, ['-c', `import ${module}, sys; print(getattr(${module}, '__version__', '?'))`], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (probe.error) return { ok: false, detail: `${SYSTEM_PYTHON} cannot run: ${probe.error.message}` };
  if (probe.status !== 0) {
    const last = probe.stderr.trim().split('\n').at(-1) ?? '';
    return { ok: false, detail: `${SYSTEM_PYTHON} cannot import ${module}: ${last}` };
  }
  return { ok: true, detail: `${module} ${probe.stdout.trim()}` };
}

interface Gate {
  fail(message: string): unknown;
  plan(n: number, comment?: string): void;
}

/**
 * Checks that `module` can be imported. When it cannot, the test fails under
 * STARLING_REQUIRE_SERVICES=1 and is skipped otherwise, saying what was skipped and how to
 * install what is missing. Returns whether the caller should go on.
 */
export function needPythonModule(t: Gate, module: string, debianPackage: string, what: string): boolean {
  const check = checkPythonModule(module);
  if (check.ok) return true;
  const reason = `${check.detail} (install with: apt-get install ${debianPackage})`;
  if (requireServices) {
    t.fail(`${what} cannot run, and STARLING_REQUIRE_SERVICES=1 makes that a failure: ${reason}`);
  } else {
    t.plan(0, `${what} skipped: ${reason}`);
  }
  return false;
}

export interface PythonRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** `RESULT key=value user=...` lines printed by the script, as [key, value, user]. */
  results: [string, string, string][];
}

/** Runs `SYSTEM_PYTHON script ...args`, killing it after `timeoutMs`. */
export function runPython(script: string, args: string[], timeoutMs: number): Promise<PythonRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(SYSTEM_PYTHON, [script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n[killed by the test after ${timeoutMs} ms]`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => (clearTimeout(timer), reject(err)));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const results = [...stdout.matchAll(/^RESULT (\w+)=(\S*) user=(\S+)$/gm)].map((m) => [m[1]!, m[2]!, m[3]!] as [string, string, string]);
      resolve({ code, signal, stdout, stderr, results });
    });
  });
}

/** The RESULT values for `key`, one per user. */
export function resultValues(run: PythonRun, key: string): Map<string, string> {
  return new Map(run.results.filter(([k]) => k === key).map(([, value, user]) => [user, value]));
}

/**
 * Runs a scenario script between two users of a test server on `port` (--user1 alice --user2
 * bob, `extra` after them) and resolves with its run when it succeeded; else fails `t` with the
 * script's FAIL line and the end of its output, and resolves with undefined.
 */
export async function runScenario(
  t: { fail(message: string, extra: object): unknown },
  name: string,
  script: string,
  login: { port: number; domain: string; password: string },
  extra: string[],
  timeoutMs: number,
): Promise<PythonRun | undefined> {
  const base = ['--port', String(login.port), '--domain', login.domain, '--password', login.password, '--user1', 'alice', '--user2', 'bob'];
  const run = await runPython(script, [...base, ...extra], timeoutMs);
  if (run.code === 0) return run;
  t.fail(`${name} failed (exit ${run.code ?? run.signal}): ${run.stderr.match(/^FAIL: .*$/m)?.[0] ?? 'no FAIL line'}`, {
    stdout: run.stdout,
    stderr: run.stderr.split('\n').slice(-150).join('\n'),
  });
  return undefined;
}
