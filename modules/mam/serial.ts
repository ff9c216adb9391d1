// One queue of jobs per key (an archive): the writes of one archive commit in the order of its
// ids, and the messages of one archive leave a hook in the order they entered it.
//
// A job has two phases: it starts once the job before it has started (queued its write), and it
// completes once its work (the commit) and every job before it have completed. So the next
// message of an archive can queue its write while the one before waits for its commit, and the
// writes of one busy archive share a transaction (group commit), yet no message leaves the hook
// before the ones ahead of it.

/** A job's first phase hands back the promise of its work, wrapped so it is not awaited there. */
export interface Started<T> {
  work: Promise<T>;
}

interface Tail {
  started: Promise<void>;
  done: Promise<void>;
}

const settled = (p: Promise<unknown>): Promise<void> =>
  p.then(
    () => {},
    () => {},
  );

export class Serial {
  private readonly tails = new Map<string, Tail>();

  /** Runs `fn` as one phase: started and done together. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.pipeline(key, async () => ({ work: Promise.resolve(await fn()) }));
  }

  /**
   * Runs `start` once the jobs queued before it for `key` have started (failed ones included);
   * resolves with the result of the work it started, once that and every job before are done.
   */
  pipeline<T>(key: string, start: () => Promise<Started<T>>): Promise<T> {
    return this.queue(key, start).done;
  }

  /** As pipeline, with the end of the job's first phase as well (`started`; never rejects). */
  queue<T>(key: string, start: () => Promise<Started<T>>): { started: Promise<void>; done: Promise<T> } {
    const before = this.tails.get(key);
    const begun = (before?.started ?? Promise.resolve()).then(start);
    const work = begun.then((s) => s.work);
    // Handled here too: it may fail before the jobs ahead are done and `done` looks at it.
    void settled(work);
    const done = before ? before.done.then(() => work) : work;
    const tail: Tail = { started: settled(begun), done: settled(done) };
    this.tails.set(key, tail);
    void tail.done.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return { started: tail.started, done };
  }

  /** Resolves once the jobs queued so far for `key` are done (at once when there are none). */
  async drained(key: string): Promise<void> {
    const tail = this.tails.get(key);
    if (tail) await tail.done;
  }

  /** Resolves once the jobs queued so far, for every key, are done. */
  async idle(): Promise<void> {
    await Promise.all([...this.tails.values()].map((t) => t.done));
  }
}
