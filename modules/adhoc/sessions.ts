// The command sessions of XEP-0050 §3.3, one map per requester (a full JID): the steps taken so
// far (for "prev"), and when the session expires. An expired session is remembered for one more
// timeout, so that its requester hears session-expired rather than bad-sessionid.
import { randomBytes } from 'node:crypto';
import type { FormStep } from './service.js';

export interface CommandSession {
  readonly id: string;
  readonly node: string;
  /** The forms shown so far; the last one is the one being filled in. */
  readonly steps: FormStep[];
  expiresAt: number;
}

export class CommandSessions {
  private readonly byRequester = new Map<string, Map<string, CommandSession>>();

  constructor(
    private readonly timeoutMs: number,
    /** Open sessions per requester; the oldest goes when a new one would pass it. */
    private readonly maxPerRequester: number,
  ) {}

  static newId(): string {
    return `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
  }

  open(requester: string, node: string, step: FormStep, now = Date.now()): CommandSession {
    let sessions = this.byRequester.get(requester);
    if (!sessions) this.byRequester.set(requester, (sessions = new Map()));
    while (sessions.size >= this.maxPerRequester) sessions.delete(sessions.keys().next().value!);
    const session: CommandSession = { id: CommandSessions.newId(), node, steps: [step], expiresAt: now + this.timeoutMs };
    sessions.set(session.id, session);
    return session;
  }

  /** The requester's session of that id and node: live, 'expired', or undefined (unknown). */
  find(requester: string, id: string, node: string, now = Date.now()): CommandSession | 'expired' | undefined {
    const session = this.byRequester.get(requester)?.get(id);
    if (!session || session.node !== node) return undefined;
    if (now > session.expiresAt) {
      this.close(requester, id);
      return 'expired';
    }
    session.expiresAt = now + this.timeoutMs;
    return session;
  }

  close(requester: string, id: string): void {
    const sessions = this.byRequester.get(requester);
    if (!sessions) return;
    sessions.delete(id);
    if (sessions.size === 0) this.byRequester.delete(requester);
  }

  /** Forgets the sessions that expired more than one timeout ago; returns how many. */
  sweep(now = Date.now()): number {
    let swept = 0;
    for (const [requester, sessions] of this.byRequester) {
      for (const [id, session] of sessions) {
        if (now > session.expiresAt + this.timeoutMs) {
          sessions.delete(id);
          swept++;
        }
      }
      if (sessions.size === 0) this.byRequester.delete(requester);
    }
    return swept;
  }
}
