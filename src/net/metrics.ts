// Prometheus metrics at /metrics on the HTTP server (prom-client): sessions and connections
// as they are now, the core's counters (src/counters.ts: stanzas routed, logins and
// authentication failures by mechanism, storage failures), and the process's own (CPU, memory,
// heap, event-loop lag: eventloop-lag.ts). Only the addresses in metrics.allow may read it (loopback by
// default); behind a reverse proxy the forwarded client address counts (http.peer).
import client from 'prom-client';
import type { Config } from '../config/schema.js';
import { COUNTERS, type CounterName, type Counters } from '../counters.js';
import type { HttpServer } from './http.js';
import { eventLoopLagGauges } from './eventloop-lag.js';

/** What the metrics read from the running server, at each scrape. */
export interface MetricsSource {
  counters: Counters;
  /** Authenticated client sessions (a bound resource), by transport. */
  clientSessions(): Record<string, number>;
  /** Open client connections, authenticated or not. */
  clientConnections(): number;
  s2sConnections(): { direction: 'in' | 'out' }[];
  components(): { configured: number; connected: number };
}

const PREFIX = 'starling_';

/** The process's own metrics, collected once per process (their collectors are never stopped). */
let processMetrics: client.Registry | undefined;

function registry(source: MetricsSource): client.Registry {
  if (!processMetrics) {
    processMetrics = new client.Registry();
    client.collectDefaultMetrics({ register: processMetrics, prefix: PREFIX });
    eventLoopLagGauges(processMetrics, PREFIX);
  }
  const register = new client.Registry();
  new client.Gauge({
    name: `${PREFIX}c2s_sessions`,
    help: 'Authenticated client sessions with a bound resource, by transport',
    labelNames: ['transport'],
    registers: [register],
    collect() {
      this.reset();
      for (const [transport, count] of Object.entries(source.clientSessions())) this.set({ transport }, count);
    },
  });
  new client.Gauge({
    name: `${PREFIX}c2s_connections`,
    help: 'Open client connections, authenticated or not',
    registers: [register],
    collect() {
      this.set(source.clientConnections());
    },
  });
  new client.Gauge({
    name: `${PREFIX}s2s_connections`,
    help: 'Server-to-server streams, by direction',
    labelNames: ['direction'],
    registers: [register],
    collect() {
      const links = source.s2sConnections();
      for (const direction of ['in', 'out'] as const) this.set({ direction }, links.filter((l) => l.direction === direction).length);
    },
  });
  new client.Gauge({
    name: `${PREFIX}components_connected`,
    help: 'External components (XEP-0114) connected now',
    registers: [register],
    collect() {
      this.set(source.components().connected);
    },
  });
  for (const [name, { help, labels }] of Object.entries(COUNTERS) as [CounterName, (typeof COUNTERS)[CounterName]][]) {
    new client.Counter({
      name: `${PREFIX}${name}`,
      help,
      labelNames: labels,
      registers: [register],
      collect() {
        this.reset();
        for (const entry of source.counters.entries()) if (entry.name === name) this.inc(entry.labels, entry.value);
      },
    });
  }
  return client.Registry.merge([processMetrics, register]);
}

/** Serves /metrics on `http`; returns the undo. */
export function serveMetrics(http: HttpServer, options: Config['metrics'], source: MetricsSource): () => void {
  const register = registry(source);
  const allowed = new Set(options.allow);
  return http.route('GET', options.path, async (req, res) => {
    const ip = http.peer(req, false).ip;
    if (!allowed.has(ip.startsWith('::ffff:') ? ip.slice(7) : ip)) {
      res.writeHead(403, { 'Content-Type': 'text/plain; charset=utf-8' }).end('metrics are not served to this address (metrics.allow)\n');
      return;
    }
    const body = await register.metrics();
    res.writeHead(200, { 'Content-Type': register.contentType, 'Cache-Control': 'no-store' }).end(body);
  });
}
