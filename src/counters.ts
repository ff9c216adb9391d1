// Counters of what went wrong (and right) in a running server, kept on the server core: a
// future /metrics endpoint reads them (snapshot()), and the log lines that report a failure
// carry the count so far. Names follow Prometheus (snake_case, `_total` for counters).

/** The counters the core and the built-in modules keep. */
export type CounterName =
  /** A message's archive write (XEP-0313, the sender's or the recipient's archive) failed. */
  | 'archive_write_failures_total'
  /** A message for an offline account could not be stored: its sender got an error. */
  | 'offline_store_failures_total'
  /** A stanza could not be routed because storage failed: its sender got an error. */
  | 'routing_storage_failures_total';

export class Counters {
  private readonly values = new Map<string, number>();

  /** Adds `by` (default 1); returns the new value. */
  inc(name: CounterName, by = 1): number {
    const value = (this.values.get(name) ?? 0) + by;
    this.values.set(name, value);
    return value;
  }

  get(name: CounterName): number {
    return this.values.get(name) ?? 0;
  }

  /** Every counter touched so far, by name. */
  snapshot(): Record<string, number> {
    return Object.fromEntries(this.values);
  }
}
