// One queue of jobs per key (an archive): the writes of one archive commit in the order of its
// ids, and the messages of one archive leave a hook in the order they entered it. Used by the
// user archives (index.ts) and the room archives (modules/muc-mam).

export class Serial {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` once the jobs queued before it for `key` are done (failed ones included). */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const result = (this.tails.get(key) ?? Promise.resolve()).then(fn);
    const tail = result.then(
      () => {},
      () => {},
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Resolves once the jobs queued so far for `key` are done (at once when there are none). */
  async drained(key: string): Promise<void> {
    const tail = this.tails.get(key);
    if (tail) await tail;
  }

  /** Resolves once the jobs queued so far, for every key, are done. */
  async idle(): Promise<void> {
    await Promise.all([...this.tails.values()]);
  }
}
