// Starts a real Starling on free loopback ports with a temporary SQLite database, for tests.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { deepMerge, validateConfig } from '../../src/config/load.js';
import { silentLogger, createLogger, type Logger } from '../../src/log.js';
import { ModuleRegistry } from '../../src/module-api/loader.js';
import { makeJid, parseJid } from '../../src/jid.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { builtinModules } from '../../modules/index.js';
import type { HookEvents } from '../../src/module-api/events.js';

// The test server's certificate is self-signed.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

export const DOMAIN = 'localhost';
export const PASSWORD = 'correct horse battery';

export interface TestServer {
  server: RunningServer;
  /** STARTTLS port. */
  port: number;
  /** Direct TLS port. */
  tlsPort: number;
  dataDir: string;
  addUser(local: string, password?: string): Promise<string>;
  stop(): Promise<void>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

export function testLogger(): Logger {
  return process.env.STARLING_TEST_LOG ? createLogger({ level: process.env.STARLING_TEST_LOG, format: 'json' }) : silentLogger;
}

/**
 * `overrides` is merged into the configuration (TOML-shaped, snake_case keys). A `data_dir`
 * given there belongs to the caller and stays when the server stops (a restart test opens it
 * again); otherwise a temporary one is made and removed.
 */
export async function startTestServer(t: Teardown, overrides: Record<string, unknown> = {}): Promise<TestServer> {
  const ownDir = typeof overrides.data_dir !== 'string';
  const dataDir = ownDir ? mkdtempSync(path.join(os.tmpdir(), 'starling-test-')) : (overrides.data_dir as string);
  const base = {
    data_dir: dataDir,
    c2s: {
      listeners: [
        { interfaces: ['127.0.0.1'], port: 0, direct_tls: false },
        { interfaces: ['127.0.0.1'], port: 0, direct_tls: true },
      ],
      auth_failure_delay: 0.05,
    },
    // Federation on a free loopback port too (the default is 5269 on every interface), and no
    // DNS: a test never connects to a server on the network (static routes only).
    s2s: { listeners: [{ interfaces: ['127.0.0.1'], port: 0, direct_tls: false }], dns_lookup: false },
    accounts: { scram_iterations: 4096 },
    // HTTP on free loopback ports too (5280 and 5281 by default).
    http: { interfaces: ['127.0.0.1'], port: 0, https_interfaces: ['127.0.0.1'], https_port: 0 },
    // The SOCKS5 proxy (a default module) too (5000 on every interface by default). Test
    // accounts are all new: anti_spam's pace for new accounts is off unless a test turns it on.
    modules: { proxy65: { interfaces: ['127.0.0.1'], port: 0 }, anti_spam: { new_account_hours: 0 } },
  };
  const registry = new ModuleRegistry(builtinModules);
  const config = validateConfig(deepMerge(base, overrides), 'test', registry);
  const server = await startServer(config, registry, testLogger());
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await server.stop();
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
  };
  t.teardown(stop);
  return {
    server,
    port: server.addresses.find((a) => !a.directTls)!.port,
    tlsPort: server.addresses.find((a) => a.directTls)!.port,
    dataDir,
    async addUser(local, password = PASSWORD) {
      const jid = makeJid(local, DOMAIN);
      await server.core.accounts.create(jid, password);
      return jid.toString();
    },
    stop,
  };
}

/**
 * Resolves once every session of `user` (a bare JID) that the server has now has ended and its
 * teardown (unavailable presence, the session/closed hooks) is done: after a client's stop(),
 * the server learns of it only when the socket closes. The sessions are taken when it is
 * called: call it before what ends them when that ends them at once (an account deletion).
 */
export async function sessionsEnded(ts: TestServer, user: string, domain = DOMAIN): Promise<void> {
  const bare = user.includes('@') ? parseJid(user).bare : makeJid(user, domain);
  const open = new Set(ts.server.core.sessions.resourcesOf(bare));
  if (open.size === 0) return;
  const host = ts.server.core.hosts.get(bare.domain)!;
  await new Promise<void>((resolve) => {
    // Last in the chain, so the modules' own session/closed handlers have run.
    const undo = host.hooks.on(
      'session/closed',
      ({ session }) => {
        open.delete(session);
        if (open.size === 0) {
          undo();
          resolve();
        }
      },
      Number.NEGATIVE_INFINITY,
      'test',
    );
  });
}

/**
 * Resolves with the next `event` on the host's hook bus that `match` accepts. The test's handler
 * runs first in the chain and lets it go on; the promise resolves on the next turn of the event
 * loop, once the synchronous handlers after it have run too (stream management keeping a
 * session, client state indication holding a stanza). Registered when called: call it before
 * what fires the event.
 */
export function nextHook<K extends keyof HookEvents>(ts: TestServer, event: K, match: (e: HookEvents[K]) => boolean = () => true, domain = DOMAIN): Promise<HookEvents[K]> {
  const host = ts.server.core.hosts.get(domain)!;
  return new Promise((resolve) => {
    const undo = host.hooks.on(
      event,
      (e) => {
        if (!match(e)) return;
        undo();
        setImmediate(() => resolve(e));
      },
      Number.POSITIVE_INFINITY,
      'test',
    );
  });
}
