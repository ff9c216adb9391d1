// The event loop's lag: how late a timer due every SAMPLE_MS fires. Node's histogram
// (perf_hooks.monitorEventLoopDelay) records the whole time between two ticks, the interval
// included, so prom-client's nodejs_eventloop_lag_* gauges read about 10 ms on an idle server;
// these gauges are the delay beyond the interval, over the time since the last scrape.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import client from 'prom-client';

const SAMPLE_MS = 10;
const NS_PER_S = 1e9;

let histogram: IntervalHistogram | undefined;

/** Lag in seconds from a recorded tick-to-tick time in nanoseconds. */
const lag = (ns: number): number => Math.max(0, ns / NS_PER_S - SAMPLE_MS / 1000);

/** Registers the gauges in `register`; the sampling starts once per process. */
export function eventLoopLagGauges(register: client.Registry, prefix: string): void {
  if (!histogram) {
    histogram = monitorEventLoopDelay({ resolution: SAMPLE_MS });
    histogram.enable();
  }
  const h = histogram;
  const values = { p50: 0, p99: 0, max: 0 };
  let read = 0;
  // One collect() per scrape reads the histogram for the three gauges, then starts it afresh.
  const collect = (): void => {
    const now = Date.now();
    if (now - read < 50) return;
    read = now;
    const empty = h.count === 0;
    values.p50 = empty ? 0 : lag(h.percentile(50));
    values.p99 = empty ? 0 : lag(h.percentile(99));
    values.max = empty ? 0 : lag(h.max);
    h.reset();
  };
  for (const key of ['p50', 'p99', 'max'] as const) {
    new client.Gauge({
      name: `${prefix}eventloop_lag_${key}_seconds`,
      help: `Event-loop lag since the last scrape, ${key}: how late a timer due every ${SAMPLE_MS} ms fired`,
      registers: [register],
      collect() {
        collect();
        this.set(values[key]);
      },
    });
  }
}
