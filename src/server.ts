// The composition root: config -> storage -> hosts -> modules -> listeners, and the way back.
import os from 'node:os';
import path from 'node:path';
import type { LoadedConfig } from './config/load.js';
import { Accounts } from './auth/accounts.js';
import { C2sListeners, type BoundAddress } from './c2s/listener.js';
import { ComponentListeners, type ComponentAddress } from './component/listener.js';
import { ControlServer } from './control/server.js';
import { reloadConfiguration, type ReloadReport } from './reload.js';
import { controlSocketPath } from './control/protocol.js';
import type { Logger } from './log.js';
import { Counters } from './counters.js';
import { serveMetrics } from './net/metrics.js';
import type { ServerCore } from './module-api/core.js';
import { Host } from './module-api/host.js';
import { loadHostModules, migrateModules, unloadModules, type ModuleRegistry } from './module-api/loader.js';
import type { ModuleContext } from './module-api/define.js';
import { AcmeCertificates } from './net/acme.js';
import { Certificates, hasOwnCertificate } from './net/certificates.js';
import { HttpServer, type HttpAddress } from './net/http.js';
import { serveBosh } from './web/bosh.js';
import { serveWebSocket } from './web/websocket.js';
import { serveWebRoutes } from './web/web-routes.js';
import { Router } from './router/router.js';
import { S2sManager } from './s2s/manager.js';
import { loadDialbackSecret, sharedDialbackSecret } from './s2s/dialback.js';
import type { S2sBoundAddress } from './s2s/listener.js';
import { openLiveState } from './sessions/open-live-state.js';
import { LocalSessions } from './sessions/local-sessions.js';
import { Cluster } from './cluster/cluster.js';
import { localInvalidation, redisInvalidation, type Invalidation } from './module-api/invalidation.js';
import { AccountStore } from './storage/accounts.js';
import { openStorage, type Storage } from './storage/database.js';
import { OperatorError, ensureWritableDir, listenError, reasonOf } from './operator-error.js';
import { StreamError } from './stream/errors.js';

export function storageOptions(config: LoadedConfig) {
  return {
    driver: config.storage.driver,
    sqlitePath: config.storage.sqlite_path || path.join(config.dataDir, 'starling.db'),
    sqliteSynchronous: config.storage.sqlite_synchronous,
    postgresUrl: config.storage.postgres_url,
    postgresSchema: config.storage.postgres_schema,
    poolSize: config.storage.pool_size,
  };
}

/** Where the storage is, for one-line errors (never a password). */
function describeStorage(config: LoadedConfig): string {
  if (config.storage.driver === 'sqlite') return `sqlite ${storageOptions(config).sqlitePath}`;
  try {
    const u = new URL(config.storage.postgres_url);
    if (u.password) u.password = '***';
    return `postgres ${u.toString()}`;
  } catch {
    return 'postgres';
  }
}

export function certificateSources(config: LoadedConfig) {
  return [...config.hostOptions].map(([domain, options]) => ({ domain, certificate: options.certificate, key: options.key }));
}

/** Opens storage and builds the accounts service (also what the CLI's account commands use). */
export async function openAccounts(config: LoadedConfig, log?: Logger): Promise<{ storage: Storage; accounts: Accounts }> {
  const storage = await openStorage({ ...storageOptions(config), log });
  const accounts = new Accounts(new AccountStore(storage.db), (host) => config.hostOptions.get(host)?.accounts);
  return { storage, accounts };
}

export interface RunningServer {
  readonly core: ServerCore;
  readonly addresses: BoundAddress[];
  /** Federation: the s2s listeners' addresses, connections, static routes. */
  readonly s2s: S2sManager;
  readonly s2sAddresses: S2sBoundAddress[];
  /** The control socket's path (in the data directory). */
  readonly controlSocket: string;
  /** The HTTP listeners' addresses (none when no module has a route). */
  readonly httpAddresses: readonly HttpAddress[];
  /** External components: who is connected, and their 'connected'/'disconnected' events. */
  readonly components: ComponentListeners;
  /** The component listener's addresses (none when no component is configured). */
  readonly componentAddresses: readonly ComponentAddress[];
  /** `starling reload` and SIGHUP: certificates again, live settings applied, and what in the file needs a restart. */
  reload(): Promise<ReloadReport>;
  /** Graceful stop: stop accepting, close streams with system-shutdown, unload, close storage. */
  stop(): Promise<void>;
}

export async function startServer(config: LoadedConfig, registry: ModuleRegistry, log: Logger): Promise<RunningServer> {
  const node = config.cluster.node_id || `${os.hostname()}:${config.c2s.listeners[0]?.port ?? 5222}`;
  // In a cluster every log line names its node.
  if (config.live_state.backend === 'redis') log = log.child({ node });
  ensureWritableDir(config.dataDir);
  // The CLI's way in (`starling status`, `kick`, ...), claimed first: a second server on the
  // same data directory stops here, before it touches storage.
  const control = await ControlServer.open(controlSocketPath(config.dataDir), log.child({ component: 'control' }));
  let storage: Storage, accounts: Accounts;
  try {
    ({ storage, accounts } = await openAccounts(config, log.child({ component: 'storage' })));
  } catch (err) {
    await control.close();
    throw new OperatorError(`storage (${describeStorage(config)}): ${reasonOf(err)}`);
  }
  const cleanup: (() => Promise<void>)[] = [() => storage.close(), () => control.close()];
  try {
    const live = await openLiveState(config.live_state, log.child({ component: 'live-state' })).catch((err: unknown) => {
      throw new OperatorError(`live state (redis ${config.live_state.redis_url}): ${reasonOf(err)}`);
    });
    cleanup.unshift(() => live.close());
    let invalidation: Invalidation = localInvalidation();
    if (live.redis) {
      const bus = await redisInvalidation(live.redis.client, live.redis.prefix, node, log.child({ component: 'invalidation' }));
      cleanup.unshift(() => bus.close());
      invalidation = bus;
    }
    const certificates = new Certificates(
      certificateSources(config),
      { dataDir: config.dataDir, certificatesDir: config.tls.certificates_dir, minVersion: config.tls.min_version, generateSelfSigned: true },
      log.child({ component: 'tls' }),
    );
    for (const problem of await certificates.load()) log.warn({ domain: problem.domain }, `certificate problem: ${problem.message}`);

    const hosts = new Map<string, Host>();
    for (const [domain, options] of config.hostOptions) hosts.set(domain, new Host(domain, options, log.child({ host: domain })));
    const sessions = new LocalSessions(live.sessions, node, (err) => log.warn({ err: reasonOf(err) }, 'live state: updating the session directory failed'));
    const counters = new Counters();
    const router = new Router({ hosts, sessions, accountExists: (h, u) => accounts.store.exists(h, u), log: log.child({ component: 'router' }), counters });
    const http = new HttpServer(config.http, certificates, log.child({ component: 'http' }));
    const cluster = live.redis
      ? new Cluster({
          redis: live.redis.client,
          prefix: live.redis.prefix,
          node,
          heartbeatMs: config.cluster.heartbeat_interval * 1000,
          directory: live.sessions,
          sessions,
          router,
          hosts,
          log: log.child({ component: 'cluster' }),
        })
      : undefined;
    const core: ServerCore = { config, log, storage, accounts, live, sessions, router, certificates, http, hosts, node, cluster, invalidation, startedAt: new Date(), counters };
    accounts.onDeleted(async (jid) => {
      // As Prosody does: the deleted account's streams end with <not-authorized/>.
      const deleted = new StreamError('not-authorized', 'the account has been deleted');
      for (const session of sessions.resourcesOf(jid)) session.close(deleted);
      await hosts.get(jid.domain)?.hooks.fire('account/deleted', { jid });
    });

    const migrated = await migrateModules(registry, hosts.values(), storage);
    if (migrated.length > 0) log.info({ migrations: migrated }, 'module storage migrated');
    const contexts: ModuleContext[] = [];
    cleanup.unshift(() => unloadModules(contexts));
    for (const host of hosts.values()) contexts.push(...(await loadHostModules(host, registry, core)));

    if (cluster) {
      // Stopped after the client streams (their sessions leave the directory first), before Redis closes.
      await cluster.start();
      cleanup.unshift(() => cluster.stop());
    }

    // Federation: stanzas for other domains go out over s2s; closed after the client streams
    // (cleanup runs last-registered first), so their last presence still goes out.
    // A configured secret is the operator's (the same on every node); else a cluster shares one in Redis.
    const dialbackSecret =
      live.redis && !config.s2s.dialback_secret
        ? await sharedDialbackSecret(live.redis.client, `${live.redis.prefix}dialback-secret`, loadDialbackSecret('', config.dataDir))
        : undefined;
    const s2s = new S2sManager(core, undefined, dialbackSecret);
    for (const host of hosts.values()) host.hooks.on('route/remote', (event) => s2s.route(event), 0, 's2s');
    cleanup.unshift(() => s2s.stop());

    const c2s = new C2sListeners(core);
    // Closed after the client streams (the WebSocket ones among them end with system-shutdown).
    cleanup.unshift(() => http.close());
    cleanup.unshift(async () => {
      for (const host of hosts.values()) await host.hooks.fire('server/stopping', {});
      const listenersClosed = c2s.stopListening();
      await c2s.closeAll();
      await listenersClosed;
      // Sessions their clients ended just before (a mass logout) may still be recording it.
      await sessions.teardownsDone(10_000);
    });
    // The web transports take no new session from the moment shutdown begins.
    if (config.http.websocket) {
      const stopWebSocket = serveWebSocket(core, c2s);
      cleanup.unshift(async () => stopWebSocket());
    }
    if (config.http.bosh) {
      const stopBosh = serveBosh(core, c2s);
      cleanup.unshift(async () => stopBosh());
    }
    const addresses = await c2s.listen().catch((err: unknown) => {
      throw listenError('c2s', err);
    });
    const s2sAddresses = await s2s.listen().catch((err: unknown) => {
      throw listenError('s2s', err);
    });
    // External components: their domains route (or bounce) from the start; closed before the
    // client streams, so the clients' last presence is not sent to a component going away.
    const components = new ComponentListeners(core);
    components.register();
    cleanup.unshift(async () => {
      const listenersClosed = components.stopListening();
      await components.closeAll();
      await listenersClosed;
    });
    const componentAddresses = await components.listen().catch((err: unknown) => {
      throw listenError('component', err);
    });
    if (config.metrics.enabled) {
      serveMetrics(http, config.metrics, {
        counters,
        clientSessions: () => c2s.boundByTransport(),
        clientConnections: () => c2s.sessions.size,
        s2sConnections: () => s2s.connections(),
        components: () => components.counts(),
      });
    }
    // host-meta and the web client page (http.web_client).
    serveWebRoutes(core);
    // Certificates by ACME for the hosts without one of their own; HTTP-01 on the HTTP listeners.
    let acme: AcmeCertificates | undefined;
    if (config.acme.enabled) {
      const domains = certificateSources(config)
        .filter((source) => !hasOwnCertificate(source, config.tls.certificates_dir))
        .map((source) => source.domain);
      acme = new AcmeCertificates(config.acme, domains, config.dataDir, certificates, log.child({ component: 'acme' }));
      acme.serveChallenges(http);
      const started = acme;
      cleanup.unshift(async () => started.stop());
    }
    // HTTP listens only when something is served on it (no open port for nothing).
    if (http.hasRoutes) {
      await http.listen().catch((err: unknown) => {
        throw listenError((err as { secure?: boolean }).secure ? 'https' : 'http', err);
      });
    }
    acme?.start();
    const reload = () => reloadConfiguration({ core, modules: registry, contexts, acme });
    control.serve({ core, c2sConnections: () => c2s.sessions.size, s2sConnections: () => s2s.connections(), components: () => components.counts(), reload });
    // Closed first on the way out (again: closing twice is nothing).
    cleanup.unshift(() => control.close());

    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        for (const step of cleanup) {
          try {
            await step();
          } catch (err) {
            log.error({ err }, 'shutdown step failed');
          }
        }
      })());
    return { core, addresses, s2s, s2sAddresses, controlSocket: control.path, httpAddresses: http.addresses, components, componentAddresses, reload, stop };
  } catch (err) {
    for (const step of cleanup) await step().catch(() => {});
    throw err;
  }
}
