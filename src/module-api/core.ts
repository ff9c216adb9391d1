// The server's shared services, as modules reach them through ctx.server.
import type { LoadedConfig } from '../config/load.js';
import type { Accounts } from '../auth/accounts.js';
import type { Logger } from '../log.js';
import type { Certificates } from '../net/certificates.js';
import type { HttpServer } from '../net/http.js';
import type { Router } from '../router/router.js';
import type { LiveState } from '../sessions/live-state.js';
import type { LocalSessions } from '../sessions/local-sessions.js';
import type { Storage } from '../storage/database.js';
import type { Counters } from '../counters.js';
import type { Host } from './host.js';
import type { Cluster } from '../cluster/cluster.js';
import type { Invalidation } from './invalidation.js';

export interface ServerCore {
  readonly config: LoadedConfig;
  readonly log: Logger;
  readonly storage: Storage;
  readonly accounts: Accounts;
  readonly live: LiveState;
  readonly sessions: LocalSessions;
  readonly router: Router;
  readonly certificates: Certificates;
  /** The process's HTTP server (routes: ModuleContext.http). */
  readonly http: HttpServer;
  readonly hosts: ReadonlyMap<string, Host>;
  /** This node's name in the cluster ([cluster] node_id; default hostname:first-c2s-port). */
  readonly node: string;
  /** The cluster's nodes and inboxes, when the live state is in Redis. */
  readonly cluster?: Cluster;
  /** Tells the other nodes of the cluster that cached shared state changed (a no-op alone); modules use ctx.invalidation. */
  readonly invalidation: Invalidation;
  readonly startedAt: Date;
  /** What went wrong so far (storage failures, archive writes lost), for logs and a future /metrics. */
  readonly counters: Counters;
}
