// `starling check`: the configuration, the certificates and the storage, without serving.
import { ConfigError, loadConfig } from './config/load.js';
import { silentLogger } from './log.js';
import type { ModuleRegistry } from './module-api/loader.js';
import { Certificates } from './net/certificates.js';
import { openLiveState } from './sessions/open-live-state.js';
import { certificateSources, storageOptions } from './server.js';
import { openStorage } from './storage/database.js';
import { reasonOf } from './operator-error.js';
import { checkSrvRecords, srvResolver } from './check-srv.js';

export interface CheckOptions {
  /** DNS servers to ask for the SRV records (host or host:port); the system's when none. */
  dnsServers?: string[];
  /** Milliseconds to wait for a DNS answer. */
  dnsTimeoutMs?: number;
}

export async function runCheck(configPath: string | undefined, registry: ModuleRegistry, options: CheckOptions = {}): Promise<number> {
  let config;
  try {
    config = loadConfig(configPath, registry);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
  const problems: string[] = [];
  const warnings: string[] = [];
  const notes: string[] = [];

  for (const [host, options] of config.hostOptions) {
    if (!options.modules_enabled.includes('sasl')) warnings.push(`${host}: "sasl" is not in modules_enabled: no client can log in`);
  }

  const certificates = new Certificates(
    certificateSources(config),
    { dataDir: config.dataDir, certificatesDir: config.tls.certificates_dir, minVersion: config.tls.min_version, generateSelfSigned: false },
    silentLogger,
  );
  for (const problem of await certificates.load()) {
    if (problem.missing) notes.push(`${problem.domain}: no certificate configured; a self-signed one will be generated at start`);
    else problems.push(`certificate of ${problem.domain}: ${problem.message}`);
  }
  for (const loaded of certificates.all()) {
    if (loaded.origin === 'self-signed') notes.push(`${loaded.domain}: the self-signed certificate ${loaded.certPath} is used (clients and servers will not trust it)`);
  }

  const resolver = srvResolver(options.dnsTimeoutMs ?? 2000, options.dnsServers);
  const srv = await checkSrvRecords([...config.hostOptions.keys()], { client: config.c2s.listeners.length > 0, server: config.s2s.listeners.length > 0, resolver });
  warnings.push(...srv.warnings);
  notes.push(...srv.notes);

  try {
    const storage = await openStorage(storageOptions(config), { migrate: false });
    notes.push(`storage: ${storage.location} reachable`);
    await storage.close();
  } catch (err) {
    problems.push(`storage (${config.storage.driver}): ${reasonOf(err)}`);
  }

  if (config.live_state.backend === 'redis') {
    try {
      const live = await openLiveState(config.live_state);
      await live.close();
      notes.push(`live state: redis reachable`);
    } catch (err) {
      problems.push(`live state (redis ${config.live_state.redis_url}): ${reasonOf(err)}`);
    }
  }

  for (const note of notes) console.log(`note: ${note}`);
  for (const warning of warnings) console.log(`warning: ${warning}`);
  if (problems.length) {
    console.error(`${config.file}: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
    return 1;
  }
  console.log(`OK: ${config.file}, hosts ${[...config.hostOptions.keys()].join(', ')}`);
  return 0;
}
