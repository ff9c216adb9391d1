// Runs Debian's ejabberd for the federation interop tests: its own configuration (YAML),
// ejabberdctl configuration, Erlang resolver configuration (inetrc), Mnesia spool, certificate
// and logs in a temporary directory; its own loopback ports and Erlang node name; started in
// the foreground with `ejabberdctl foreground` and stopped at teardown (SIGTERM, then SIGKILL),
// every step bounded in time.
//
// - No epmd: the node's distribution port is fixed (ERL_DIST_PORT in the ejabberdctl
//   configuration, which makes ejabberdctl pass `-erl_epmd_port <port> -start_epmd false`), so
//   neither the server nor `ejabberdctl register` needs, starts or leaves behind an epmd, and a
//   system ejabberd (node ejabberd@localhost, ports 5222/5269) does not get in the way.
// - The Erlang cookie is set on the command line (ERL_OPTIONS), so ~ejabberd/.erlang.cookie is
//   neither read nor created.
// - Finding Starling: ejabberd 23.01 has no static s2s route. Its outgoing streams look up
//   _xmpps-server/_xmpp-server SRV records with Erlang's own resolver (inet_res), then the
//   target's address with getaddrinfo. The resolver reads ERL_INETRC, which ejabberdctl sets to
//   <config dir>/inetrc: the run's inetrc turns /etc/resolv.conf off and names one nameserver,
//   a DNS server run by the test on loopback (conformance/helpers/srv-dns.ts). Nothing else
//   (the system resolver, /etc/hosts) is touched.
// - ejabberdctl runs only as root (it then switches to the "ejabberd" user with su) or as that
//   user: as root the directory is handed to that user.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { asRoot, debianVersion, freePort, gate, handOver, terminate, userExists, waitForPort, which, type Gate } from '../helpers/daemon.js';

const STARTUP_MS = 30_000;
const CTL_MS = 30_000;
const USER = 'ejabberd';

/** ejabberdctl: on PATH, or where Debian puts it (/usr/sbin is not on every user's PATH). */
function ejabberdctl(): string | undefined {
  return which('ejabberdctl') ?? (existsSync('/usr/sbin/ejabberdctl') ? '/usr/sbin/ejabberdctl' : undefined);
}

/** What is missing to run ejabberd here, or undefined when it can run. */
export function ejabberdProblem(): string | undefined {
  if (!ejabberdctl()) return 'ejabberd is not installed (apt-get install -y ejabberd)';
  if (!userExists(USER)) return `there is no "${USER}" user (ejabberdctl runs as that user)`;
  if (!asRoot && os.userInfo().username !== USER) return `ejabberdctl runs only as root or as the "${USER}" user, not as ${os.userInfo().username}`;
  const version = debianVersion('ejabberd');
  if (version && !/^(2[1-9]|[3-9]\d)\./.test(version)) return `ejabberd ${version} is older than 21.x (YAML options used here)`;
  return undefined;
}

/** Whether to run: skipped, or failed under STARLING_REQUIRE_SERVICES=1, when ejabberd cannot. */
export function needEjabberd(t: Gate, what: string): boolean {
  return gate(t, what, ejabberdProblem());
}

export function ejabberdVersion(): string {
  return debianVersion('ejabberd') ?? 'unknown';
}

export interface EjabberdOptions {
  domain: string;
  c2sPort: number;
  s2sPort: number;
  /** The UDP port of the DNS server its outgoing s2s lookups go to (on 127.0.0.1). */
  dnsPort: number;
  /** PEM files, joined into the one file ejabberd's `certfiles` wants. */
  certificate: string;
  key: string;
  /**
   * With a CA: `s2s_cafile`, and mod_s2s_dialback left out, so that peers must present a
   * certificate it can verify (SASL EXTERNAL, XEP-0178). Without: mod_s2s_dialback, whose
   * default access rule lets any server authenticate with dialback (XEP-0220).
   */
  caFile?: string;
  users: Record<string, string>;
  /** Top-level options added to the configuration (YAML lines), such as `auth_password_format: scram`. */
  extraYaml?: string;
}

export interface RunningEjabberd {
  dir: string;
  node: string;
  logFile: string;
  /** From spawning ejabberdctl to both ports listening and the accounts registered. */
  startMs: number;
  log(): string;
  /** Runs `ejabberdctl <args>` against this node. */
  ctl(...args: string[]): Promise<{ code: number | null; output: string }>;
  stop(): Promise<void>;
}

const yaml = (s: string) => JSON.stringify(s); // a JSON string is a YAML flow scalar

function configYaml(dir: string, o: EjabberdOptions): string {
  return `# Written by conformance/ejabberd/ejabberd.ts for one run; deleted after it.
hosts:
  - ${yaml(o.domain)}
loglevel: info
log_rotate_count: 0
hide_sensitive_log_data: false
certfiles:
  - ${yaml(path.join(dir, 'ejabberd.pem'))}
${o.caFile ? `s2s_cafile: ${yaml(path.join(dir, 'ca.pem'))}\n` : ''}listen:
  -
    port: ${o.c2sPort}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls_required: true
  -
    port: ${o.s2sPort}
    ip: "127.0.0.1"
    module: ejabberd_s2s_in
s2s_use_starttls: required
outgoing_s2s_families:
  - ipv4
outgoing_s2s_timeout: 10
s2s_dns_timeout: 3
s2s_dns_retries: 1
auth_method: internal
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
  s2s:
    allow: all
  register:
    deny: all
modules:
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
${o.caFile ? '' : '  mod_s2s_dialback: {}\n'}  mod_vcard: {}
  mod_version:
    show_os: false
${o.extraYaml ?? ''}`;
}

export async function startEjabberd(t: Gate, options: EjabberdOptions): Promise<RunningEjabberd> {
  const command = ejabberdctl();
  if (!command) throw new Error('ejabberdctl not found');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'starling-ejabberd-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  const node = `starling-${process.pid}-${randomBytes(3).toString('hex')}@localhost`;
  const distPort = await freePort();
  const logs = path.join(dir, 'logs');
  const logFile = path.join(logs, 'ejabberd.log');
  const pidFile = path.join(dir, 'ejabberd.pid');
  mkdirSync(logs);
  mkdirSync(path.join(dir, 'spool'));
  writeFileSync(path.join(dir, 'ejabberd.pem'), readFileSync(options.certificate, 'utf8') + readFileSync(options.key, 'utf8'), { mode: 0o600 });
  if (options.caFile) writeFileSync(path.join(dir, 'ca.pem'), readFileSync(options.caFile));
  writeFileSync(path.join(dir, 'ejabberd.yml'), configYaml(dir, options));
  // Sourced by ejabberdctl (sh): the server and every ejabberdctl command read it.
  writeFileSync(
    path.join(dir, 'ejabberdctl.cfg'),
    `ERL_OPTIONS="-setcookie ${randomBytes(12).toString('hex')} -env ERL_CRASH_DUMP_BYTES 0"
ERL_DIST_PORT=${distPort}
INET_DIST_INTERFACE=127.0.0.1
EJABBERD_PID_PATH=${path.join(dir, 'ejabberd.pid')}
EJABBERD_BYPASS_WARNINGS=true
`,
  );
  // Erlang's resolver (inet_res): no /etc/resolv.conf, only the test's DNS server. Order
  // matters: resolv_conf "" resets the name servers, so it comes first.
  writeFileSync(path.join(dir, 'inetrc'), `{resolv_conf, ""}.\n{nameserver, {127,0,0,1}, ${options.dnsPort}}.\n`);
  handOver(dir, USER);

  const base = [
    '--config-dir',
    dir,
    '--config',
    path.join(dir, 'ejabberd.yml'),
    '--ctl-config',
    path.join(dir, 'ejabberdctl.cfg'),
    '--logs',
    logs,
    '--spool',
    path.join(dir, 'spool'),
    '--node',
    node,
  ];
  const ctl = (...args: string[]) =>
    new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(command, [...base, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
      const timer = setTimeout(() => {
        output += `\n[killed by the test after ${CTL_MS} ms]`;
        child.kill('SIGKILL');
      }, CTL_MS);
      child.on('error', (err) => (clearTimeout(timer), resolve({ code: null, output: String(err) })));
      child.on('close', (code) => (clearTimeout(timer), resolve({ code, output })));
    });

  const started = Date.now();
  // Its own process group, so that ejabberdctl and su can be signalled together (su runs the VM
  // in a session of its own, and passes SIGTERM on to it).
  const child = spawn(command, [...base, 'foreground'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-20_000)));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const readLog = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      // The Erlang VM (behind ejabberdctl and su) stops cleanly on SIGTERM; ejabberdctl and su
      // then end with it. Without its pid (it never got that far) the group gets the signal;
      // after 10 s, SIGKILL to both.
      const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : undefined;
      await terminate(child, exited, { pid, childToo: pid === undefined, graceMs: 10_000, group: true });
      cleanup();
    })());
  t.teardown(stop);

  const fail = async (message: string) => {
    const detail = `${message}\n--- ejabberdctl output (tail) ---\n${output.split('\n').slice(-40).join('\n')}\n--- ejabberd.log (tail) ---\n${readLog().split('\n').slice(-40).join('\n')}`;
    await stop();
    return new Error(detail);
  };
  try {
    await waitForPort('ejabberd', options.c2sPort, STARTUP_MS, () => child.exitCode !== null);
    await waitForPort('ejabberd', options.s2sPort, STARTUP_MS, () => child.exitCode !== null);
  } catch (err) {
    throw await fail((err as Error).message);
  }
  for (const [user, password] of Object.entries(options.users)) {
    const r = await ctl('register', user, options.domain, password);
    if (r.code !== 0) throw await fail(`ejabberdctl register ${user}@${options.domain} failed (${r.code}): ${r.output}`);
  }
  return { dir, node, logFile, startMs: Date.now() - started, log: readLog, ctl, stop };
}
