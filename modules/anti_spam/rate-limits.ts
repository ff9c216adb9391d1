// Rate limits (abuse controls): how many messages, presences and IQs one authenticated client
// session (any transport) and one remote domain (inbound s2s) may send. Token buckets: `burst`
// at once, refilled at `*_per_second`. What goes over bounces with a 'wait' policy-violation
// (errors are never answered: the router drops a bounce of an error); a client session that
// goes on past `close_after` refused stanzas in a row is closed with the stream error
// policy-violation. Other sessions are never affected.
//
// Where it is counted: a client session lives on one node, so its buckets are in that
// process's memory (no round trip per stanza). A remote domain's streams may reach any node of
// a cluster, so with [live_state] backend = "redis" its counts are shared in Redis (the live
// state's fixed-window counters: `burst` stanzas per window of burst / rate seconds, the same
// average and peak as the bucket); in memory otherwise. A Redis failure lets stanzas through
// (logged once) rather than refusing a whole domain.
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import type { ModuleContext } from '../../src/module-api/define.js';
import { preEvents, type PreRouteEvent, type RouteEvent, type StanzaKind } from '../../src/module-api/events.js';
import { sessionKey } from '../../src/module-api/keys.js';
import { Priority } from '../../src/module-api/priorities.js';
import { StanzaError, StreamError } from '../../src/stream/errors.js';
import { TokenBucket, type BucketLimit } from '../../src/token-bucket.js';

const perSecond = z.number().min(0);
const burst = z.number().int().min(1);

/** The s2s limits, per remote domain: `[modules.anti_spam.s2s]`. */
const S2sRateLimits = z.strictObject({
  messages_per_second: perSecond.default(100),
  burst: burst.default(500),
  presence_per_second: perSecond.default(100),
  presence_burst: burst.default(500),
  iq_per_second: perSecond.default(100),
  iq_burst: burst.default(500),
});

/** The options of the rate limits, under `[modules.anti_spam]` (a rate of 0 turns that limit off). */
export const RateLimitsConfig = z.strictObject({
  messages_per_second: perSecond.default(30),
  burst: burst.default(100),
  presence_per_second: perSecond.default(10),
  presence_burst: burst.default(100),
  iq_per_second: perSecond.default(30),
  iq_burst: burst.default(200),
  /** Refused stanzas in a row after which a client session is closed (policy-violation); 0: never. */
  close_after: z.number().int().min(0).default(50),
  s2s: S2sRateLimits.prefault({}),
});
export type RateLimitsConfig = z.infer<typeof RateLimitsConfig>;

type Limits = Record<StanzaKind, BucketLimit | undefined>;

function limitsOf(o: z.infer<typeof S2sRateLimits>): Limits {
  const limit = (rate: number, burst: number) => (rate > 0 ? { rate, burst } : undefined);
  return {
    message: limit(o.messages_per_second, o.burst),
    presence: limit(o.presence_per_second, o.presence_burst),
    iq: limit(o.iq_per_second, o.iq_burst),
  };
}

/** What one client session or remote domain has used: a bucket per kind, made on first use. */
class Usage {
  message: TokenBucket | undefined;
  presence: TokenBucket | undefined;
  iq: TokenBucket | undefined;
  /** Stanzas refused in a row. */
  refused = 0;
  lastSeen = 0;

  constructor(private readonly limits: Limits) {}

  /** Takes a token of `kind`; false when over the limit. */
  take(kind: StanzaKind, now: number): boolean {
    const limit = this.limits[kind];
    if (!limit) return true;
    const bucket = (this[kind] ??= new TokenBucket(limit, now));
    return bucket.take(now);
  }
}

const UsageKey = sessionKey<Usage>('anti_spam.rate');

const tooFast = (kind: StanzaKind) => new StanzaError('policy-violation', `too many ${kind} stanzas; wait a moment and try again`, 'wait');
const REFUSALS: Record<StanzaKind, StanzaError> = { message: tooFast('message'), presence: tooFast('presence'), iq: tooFast('iq') };
const LABELS = {
  c2s: { message: { kind: 'message', scope: 'c2s' }, presence: { kind: 'presence', scope: 'c2s' }, iq: { kind: 'iq', scope: 'c2s' } },
  s2s: { message: { kind: 'message', scope: 's2s' }, presence: { kind: 'presence', scope: 's2s' }, iq: { kind: 'iq', scope: 's2s' } },
} as const;

/** Idle remote domains are forgotten after this long (their buckets are full again by then). */
const DOMAIN_IDLE_MS = 10 * 60_000;

export function setupRateLimits(ctx: ModuleContext<unknown>, options: RateLimitsConfig): void {
  const counters = ctx.server.counters;
  const c2sLimits = limitsOf(options);
  const closeAfter = options.close_after;

  // Client sessions: the 'pre-*' grid sees every stanza a local client sends, first.
  const c2s = (kind: StanzaKind) => (event: PreRouteEvent) => {
    const session = event.origin;
    let usage = session.data.get(UsageKey);
    if (!usage) session.data.set(UsageKey, (usage = new Usage(c2sLimits)));
    if (usage.take(kind, performance.now())) {
      usage.refused = 0;
      return false;
    }
    counters.inc('rate_limited_total', 1, LABELS.c2s[kind]);
    if (++usage.refused === 1) session.log.info({ kind }, 'rate limited: stanzas over the limit bounce with policy-violation');
    if (closeAfter > 0 && usage.refused > closeAfter) {
      session.log.info({ refused: usage.refused }, 'rate limited: closing the session, which kept going');
      session.close(new StreamError('policy-violation', 'too many stanzas over the rate limit'));
      return true;
    }
    throw REFUSALS[kind];
  };
  for (const kind of ['message', 'presence', 'iq'] as const) {
    if (!c2sLimits[kind]) continue;
    const handler = c2s(kind);
    for (const event of preEvents(kind)) ctx.hook(event, handler, Priority.GATE);
  }

  // Remote domains: 'stanza/in' sees every stanza from another server before it is routed.
  const s2sLimits = limitsOf(options.s2s);
  if (!s2sLimits.message && !s2sLimits.presence && !s2sLimits.iq) return;
  const shared = ctx.server.config.live_state.backend === 'redis';
  const domains = new Map<string, Usage>();
  let redisFailing = false;
  const overShared = async (kind: StanzaKind, domain: string, limit: BucketLimit): Promise<boolean> => {
    try {
      const count = await ctx.server.live.counters.hit(`anti_spam:${kind}:${domain}`, Math.max(1000, Math.round((limit.burst / limit.rate) * 1000)));
      redisFailing = false;
      return count > limit.burst;
    } catch (err) {
      if (!redisFailing) ctx.log.warn({ err: (err as Error).message }, 'rate limits: the live state (Redis) failed; stanzas from other servers go unlimited meanwhile');
      redisFailing = true;
      return false;
    }
  };
  ctx.hook(
    'stanza/in',
    async (event: RouteEvent) => {
      const kind = event.stanza.name as StanzaKind;
      const limit = s2sLimits[kind];
      if (!limit) return false;
      const domain = event.from.domain;
      let over: boolean;
      if (shared) over = await overShared(kind, domain, limit);
      else {
        let usage = domains.get(domain);
        if (!usage) domains.set(domain, (usage = new Usage(s2sLimits)));
        const now = performance.now();
        usage.lastSeen = now;
        over = !usage.take(kind, now);
        if (!over) usage.refused = 0;
        else if (++usage.refused === 1) ctx.log.info({ domain, kind }, 'rate limited: stanzas from this server over the limit bounce with policy-violation');
      }
      if (!over) return false;
      counters.inc('rate_limited_total', 1, LABELS.s2s[kind]);
      throw REFUSALS[kind];
    },
    Priority.GATE,
  );
  if (!shared) {
    ctx.every(60_000, () => {
      const before = performance.now() - DOMAIN_IDLE_MS;
      for (const [domain, usage] of domains) if (usage.lastSeen < before) domains.delete(domain);
    });
  }
}
