// `starling reload` and SIGHUP: the certificates are read again (renewed ones take effect for
// new connections), and the configuration file is read again and compared with the one the
// server runs with. What differs is named, as needing a restart: listeners, storage, hosts,
// modules and their options are set up once at start. A file that no longer validates is
// reported and changes nothing.
import type { LoadedConfig, ModuleSchemas } from './config/load.js';
import { loadConfig } from './config/load.js';
import type { ServerCore } from './module-api/core.js';

export interface ReloadReport {
  /** What was reloaded. */
  applied: string[];
  /** Certificate problems found on the way. */
  problems: string[];
  /** Settings that differ in the file and take effect only after a restart. */
  restart: string[];
}

const json = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (x instanceof Map ? [...x.entries()] : x));

/** The top-level settings (and hosts) in which `next` differs from `running`. */
export function changedSettings(running: LoadedConfig, next: LoadedConfig): string[] {
  const changed: string[] = [];
  const keys = new Set([...Object.keys(running), ...Object.keys(next)]);
  for (const key of [...keys].sort()) {
    if (key === 'file' || key === 'hostOptions') continue;
    if (json((running as unknown as Record<string, unknown>)[key]) !== json((next as unknown as Record<string, unknown>)[key])) changed.push(key);
  }
  const domains = new Set([...running.hostOptions.keys(), ...next.hostOptions.keys()]);
  for (const domain of [...domains].sort()) {
    if (json(running.hostOptions.get(domain)) !== json(next.hostOptions.get(domain))) changed.push(`hosts."${domain}"`);
  }
  return changed;
}

/** Reloads what a running server can; throws ConfigError when the file does not validate. */
export async function reloadConfiguration(core: ServerCore, modules: ModuleSchemas): Promise<ReloadReport> {
  const running = core.config;
  const next = running.file === '(defaults)' ? undefined : loadConfig(running.file, modules);
  const problems = (await core.certificates.load()).map((p) => `${p.domain}: ${p.message}`);
  return { applied: ['certificates'], problems, restart: next ? changedSettings(running, next) : [] };
}
