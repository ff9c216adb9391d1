// What happens around every authentication attempt, whatever the profile: the per-IP failure
// throttle, the delay before a failure is answered, the log line, and the server's counters of
// logins and failures by mechanism (for /metrics).
import type { Counters as ServerCounters } from '../../src/counters.js';
import type { Logger } from '../../src/log.js';
import type { Counters } from '../../src/sessions/live-state.js';
import type { ClientStream } from '../../src/sessions/session.js';
import { StreamError } from '../../src/stream/errors.js';

export interface AttemptPolicy {
  failuresPerIpPerMinute: number;
  failureDelayMs: number;
}

export class AuthAttempts {
  constructor(
    private readonly counters: Counters,
    private readonly policy: AttemptPolicy,
    private readonly log: Logger,
    private readonly metrics: ServerCounters,
  ) {}

  /** Counts a successful authentication. */
  succeeded(mechanism: string): void {
    this.metrics.inc('logins_total', 1, { mechanism });
  }

  private key(stream: ClientStream): string {
    return `auth-failures:${stream.remoteAddress}`;
  }

  /** Refuses to start an attempt from an address that failed too often; closes the stream. */
  async admit(stream: ClientStream): Promise<boolean> {
    if ((await this.counters.peek(this.key(stream))) < this.policy.failuresPerIpPerMinute) return true;
    this.log.warn({ ip: stream.remoteAddress }, 'authentication refused: too many failures from this address');
    stream.close(new StreamError('policy-violation', 'too many failed authentication attempts; try again later'));
    return false;
  }

  /** Counts a failure and waits the failure delay (so guessing is slow), then lets the caller answer. */
  async failed(stream: ClientStream, mechanism: string, condition: string, user?: string): Promise<void> {
    this.metrics.inc('auth_failures_total', 1, { mechanism });
    const count = await this.counters.hit(this.key(stream), 60_000);
    this.log.info({ ip: stream.remoteAddress, user, mechanism, condition, failuresThisMinute: count }, 'authentication failed');
    await new Promise((resolve) => setTimeout(resolve, this.policy.failureDelayMs));
  }
}
