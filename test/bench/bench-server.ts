// The Starling a bench runs in a process of its own: SQLite in a temporary directory, plain TCP
// on a free loopback port with PLAIN allowed (the clients are raw sockets), no s2s or HTTP.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export async function startBenchServer(name: string, options: { modules: string[]; config?: Record<string, unknown> }) {
  const { validateConfig } = await import('../../src/config/load.js');
  const { ModuleRegistry } = await import('../../src/module-api/loader.js');
  const { builtinModules } = await import('../../modules/index.js');
  const { startServer } = await import('../../src/server.js');
  const { silentLogger } = await import('../../src/log.js');
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `starling-${name}-`));
  const registry = new ModuleRegistry(builtinModules);
  const config = validateConfig(
    {
      data_dir: dataDir,
      modules_enabled: options.modules,
      c2s: {
        listeners: [{ interfaces: ['127.0.0.1'], port: 0, direct_tls: false }],
        require_encryption: false,
        allow_plain_without_tls: true,
        max_unauthenticated_per_ip: 100_000,
        idle_ping_interval: 3600,
      },
      s2s: { listeners: [] },
      http: { interfaces: [], https_interfaces: [] },
      ...options.config,
    },
    name,
    registry,
  );
  const server = await startServer(config, registry, silentLogger);
  return {
    server,
    port: server.addresses[0]!.port,
    async stop() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
