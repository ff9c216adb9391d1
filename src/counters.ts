// Counters of what a running server did and what went wrong, kept on the server core: the
// /metrics endpoint (src/net/metrics.ts) exposes them, and the log lines that report a failure
// carry the count so far. Names follow Prometheus (snake_case, `_total` for counters); a
// counter may be split by labels (the kind of stanza, the SASL mechanism).

/** The counters the core and the built-in modules keep, with their help text and labels. */
export const COUNTERS = {
  archive_write_failures_total: { help: "A message's archive write (XEP-0313) failed", labels: [] },
  offline_store_failures_total: { help: 'A message for an offline account could not be stored: its sender got an error', labels: [] },
  routing_storage_failures_total: { help: 'A stanza could not be routed because storage failed: its sender got an error', labels: [] },
  stanzas_routed_total: { help: 'Stanzas routed, by kind', labels: ['kind'] },
  logins_total: { help: 'Client authentications that succeeded, by SASL mechanism', labels: ['mechanism'] },
  rate_limited_total: { help: 'Stanzas refused by the rate limits (anti_spam), by kind and scope (c2s session or s2s domain)', labels: ['kind', 'scope'] },
  auth_failures_total: { help: 'Client authentications refused for their credentials, by SASL mechanism', labels: ['mechanism'] },
} as const satisfies Record<string, { help: string; labels: readonly string[] }>;

export type CounterName = keyof typeof COUNTERS;

export type Labels = Readonly<Record<string, string>>;

export interface CounterValue {
  name: CounterName;
  labels: Labels;
  value: number;
}

const keyOf = (name: string, labels: Labels) => {
  const names = Object.keys(labels);
  if (names.length === 0) return name;
  return `${name}{${names
    .sort()
    .map((l) => `${l}=${JSON.stringify(labels[l])}`)
    .join(',')}}`;
};

export class Counters {
  private readonly values = new Map<string, CounterValue>();

  /** Adds `by` (default 1) to the counter with these labels; returns the new value. */
  inc(name: CounterName, by = 1, labels: Labels = {}): number {
    const key = keyOf(name, labels);
    let counter = this.values.get(key);
    if (!counter) this.values.set(key, (counter = { name, labels, value: 0 }));
    counter.value += by;
    return counter.value;
  }

  /** One counter's value (with these labels); 0 if never touched. */
  get(name: CounterName, labels: Labels = {}): number {
    return this.values.get(keyOf(name, labels))?.value ?? 0;
  }

  /** Every counter touched so far, each label set on its own. */
  entries(): CounterValue[] {
    return [...this.values.values()];
  }
}
