// `starling reload` and SIGHUP: the certificates are read again (renewed ones take effect for
// new connections), and the configuration file is read again and compared with the one the
// server runs with. What can change on a running server is applied live: the log level,
// acme.renew_before_days (and ACME certificates now due are ordered), the admins and the
// accounts options (global or per host; read at each use), and the options of modules that
// have a reconfigure hook and accept the change. Everything else that differs (listeners,
// storage, hosts, modules_enabled, ...) is named, as needing a restart. A file that no longer
// validates is reported and changes nothing.
import type { LoadedConfig, ModuleSchemas } from './config/load.js';
import { loadConfig } from './config/load.js';
import { HostOptions } from './config/schema.js';
import type { ServerCore } from './module-api/core.js';
import type { ModuleContext, ModuleDefinition } from './module-api/define.js';
import type { AcmeCertificates } from './net/acme.js';

export interface ReloadReport {
  /** What was reloaded (the certificates). */
  applied: string[];
  /** Settings changed in the file and applied on the running server. */
  live: string[];
  /** Certificate problems found on the way. */
  problems: string[];
  /** Settings that differ in the file and take effect only after a restart. */
  restart: string[];
}

/** What the reload needs of the running server besides its core. */
export interface ReloadTarget {
  core: ServerCore;
  modules: ModuleSchemas & { get(name: string): ModuleDefinition | undefined };
  /** The module contexts of every host. */
  contexts: readonly ModuleContext[];
  /** Certificates by ACME, when enabled: checked again at each reload. */
  acme?: AcmeCertificates;
}

const json = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (x instanceof Map ? [...x.entries()] : x));
const differ = (a: unknown, b: unknown) => json(a) !== json(b);

/** Options of a host that a running server reads at each use, so a new value takes effect at once. */
const LIVE_HOST_OPTIONS = new Set(['admins', 'accounts']);
const HOST_KEYS = Object.keys(HostOptions.shape);
/** Not settings: derived, or compared per host (the merged options). */
const NOT_COMPARED = new Set(['file', 'dataDir', 'hostOptions', 'hosts', ...HOST_KEYS]);

/** Reloads what a running server can; throws ConfigError when the file does not validate. */
export async function reloadConfiguration(target: ReloadTarget): Promise<ReloadReport> {
  const { core } = target;
  const next = core.config.file === '(defaults)' ? undefined : loadConfig(core.config.file, target.modules);
  const problems = (await core.certificates.load()).map((p) => `${p.domain}: ${p.message}`);
  const report: ReloadReport = { applied: ['certificates'], live: [], problems, restart: [] };
  if (next) await applyChanges(target, next, report);
  // Missing or due certificates are ordered (in the background: the CA takes its time).
  target.acme?.check();
  return report;
}

async function applyChanges({ core, modules, contexts, acme }: ReloadTarget, next: LoadedConfig, report: ReloadReport): Promise<void> {
  // The running configuration is updated with what is applied, so the next reload compares
  // against what the server runs with.
  const running = core.config as LoadedConfig & Record<string, unknown>;
  const nextRaw = next as LoadedConfig & Record<string, unknown>;

  for (const key of [...new Set([...Object.keys(running), ...Object.keys(next)])].sort()) {
    if (NOT_COMPARED.has(key) || !differ(running[key], nextRaw[key])) continue;
    if (key === 'log') {
      if (running.log.level !== next.log.level) {
        core.log.level = next.log.level;
        running.log.level = next.log.level;
        report.live.push('log.level');
      }
      if (running.log.format !== next.log.format) report.restart.push('log.format');
      continue;
    }
    if (key === 'acme' && acme) {
      const { renew_before_days: before, ...rest } = running.acme;
      const { renew_before_days: after, ...nextRest } = next.acme;
      if (before !== after) {
        acme.renewBeforeDays = after;
        running.acme.renew_before_days = after;
        report.live.push('acme.renew_before_days');
      }
      if (differ(rest, nextRest)) report.restart.push('acme');
      continue;
    }
    report.restart.push(key);
  }

  // Per host, on the merged options: setting name -> domain -> applied live or not.
  const outcomes = new Map<string, Map<string, boolean>>();
  const note = (setting: string, domain: string, live: boolean) => {
    const byHost = outcomes.get(setting) ?? new Map<string, boolean>();
    outcomes.set(setting, byHost.set(domain, live));
  };
  const domains = [...new Set([...running.hostOptions.keys(), ...next.hostOptions.keys()])].sort();
  for (const domain of domains) {
    const before = running.hostOptions.get(domain);
    const after = next.hostOptions.get(domain);
    if (!before || !after) {
      report.restart.push(`hosts."${domain}"`);
      continue;
    }
    const beforeRaw = before as HostOptions & Record<string, unknown>;
    const afterRaw = after as HostOptions & Record<string, unknown>;
    for (const key of HOST_KEYS) {
      if (key === 'modules') continue;
      if (!differ(beforeRaw[key], afterRaw[key])) continue;
      const live = LIVE_HOST_OPTIONS.has(key);
      // host.options is this same object: what reads it at each use sees the new value.
      if (live) beforeRaw[key] = afterRaw[key];
      note(key, domain, live);
    }
    for (const name of [...new Set([...Object.keys(before.modules), ...Object.keys(after.modules)])].sort()) {
      if (!differ(before.modules[name], after.modules[name])) continue;
      const ctx = contexts.find((c) => c.host.domain === domain && c.name === name);
      const live = ctx !== undefined && after.modules[name] !== undefined && (await reconfigure(ctx, modules.get(name), after.modules[name]));
      if (live) before.modules[name] = after.modules[name]!;
      note(`modules.${name}`, domain, live);
    }
  }

  // Named once when the global setting changed and every host took it the same way; else per host.
  for (const [setting, byHost] of [...outcomes].sort(([a], [b]) => a.localeCompare(b))) {
    const [key, sub] = setting.split('.') as [string, string | undefined];
    const globalBefore = sub === undefined ? running[key] : running.modules[sub];
    const globalAfter = sub === undefined ? nextRaw[key] : next.modules[sub];
    const verdicts = new Set(byHost.values());
    if (differ(globalBefore, globalAfter) && verdicts.size === 1) {
      const live = verdicts.has(true);
      (live ? report.live : report.restart).push(setting);
      if (live) {
        if (sub === undefined) running[key] = globalAfter;
        else if (next.modules[sub] === undefined) delete running.modules[sub];
        else running.modules[sub] = next.modules[sub];
      }
      continue;
    }
    for (const [domain, live] of byHost) (live ? report.live : report.restart).push(`hosts."${domain}".${setting}`);
  }
}

/** The module's reconfigure hook, if any: true when it took the new options. */
async function reconfigure(ctx: ModuleContext, definition: ModuleDefinition | undefined, options: Record<string, unknown>): Promise<boolean> {
  if (!definition?.reconfigure) return false;
  try {
    if ((await definition.reconfigure(ctx, options)) === false) return false;
  } catch (err) {
    ctx.log.error({ err }, 'applying changed options failed; they take effect after a restart');
    return false;
  }
  ctx.reconfigured(options);
  return true;
}
