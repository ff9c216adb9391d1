// Blocking strangers, as Prosody's and ejabberd's mod_block_strangers do: messages and IQ
// get/set to a user from an address with no subscription either way in the user's roster
// bounce with <service-unavailable/>, and their presence (other than subscription management:
// a stranger may ask to become a contact) is dropped. Errors and IQ results pass (they answer
// the user's own requests), and so do:
//   - the server itself, its other hosts' domains, and its service domains, components and
//     subdomains (rooms on conference.<host>, upload.<host>);
//   - users of the server's hosts when allow_local_users is on (strangers otherwise);
//   - addresses the user sent presence to and has not left (rooms the user is in, occupants);
//   - addresses the user sent a stanza to in the last recent_contact_minutes.
// `block_strangers` is the host's default; each account may choose for itself (an ad-hoc
// command on its server, or `starling block-strangers JID on|off`), its choice kept in a keyval
// store and read again at most a minute later.
import type { Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import type { ModuleContext } from '../../src/module-api/define.js';
import type { PreRouteEvent, RouteEvent } from '../../src/module-api/events.js';
import { preEvents } from '../../src/module-api/events.js';
import { Priority } from '../../src/module-api/priorities.js';
import { StanzaError } from '../../src/stream/errors.js';
import { form, parseBoolean } from '../../src/xml/data-forms.js';
import { AdhocKey } from '../adhoc/service.js';
import { RosterKey, type RosterService } from '../roster/service.js';
import type { AntiSpamConfig } from './config.js';
import { optionalService } from './uses.js';
import { strangersChoice, type StrangersChoice } from './store.js';
import { ALL } from '../../src/module-api/invalidation.js';

export const BLOCK_STRANGERS_NODE = 'urn:starling:anti-spam:block-strangers';
const FORM_TYPE = 'urn:starling:anti-spam';
/** Addresses remembered per user (the least recently written to go first). */
const MAX_RECENT = 500;
/** How long an account's choice is kept in memory before it is read again. */
const CHOICE_TTL_MS = 60_000;
const SUBSCRIPTION_TYPES = new Set(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);

/** What each user wrote to lately, and the addresses it has sent available presence to. */
export class Correspondents {
  private readonly recent = new Map<string, Map<string, number>>();
  private readonly directed = new Map<string, Set<string>>();

  constructor(private readonly ttlMs: number) {}

  wrote(user: string, peer: string, now = Date.now()): void {
    let peers = this.recent.get(user);
    if (!peers) this.recent.set(user, (peers = new Map()));
    peers.delete(peer);
    peers.set(peer, now + this.ttlMs);
    if (peers.size > MAX_RECENT) peers.delete(peers.keys().next().value!);
  }

  presence(user: string, peer: string, available: boolean): void {
    let peers = this.directed.get(user);
    if (available) {
      if (!peers) this.directed.set(user, (peers = new Set()));
      if (peers.size < MAX_RECENT) peers.add(peer);
    } else {
      peers?.delete(peer);
      if (peers?.size === 0) this.directed.delete(user);
    }
  }

  knows(user: string, peer: string, now = Date.now()): boolean {
    if (this.directed.get(user)?.has(peer)) return true;
    const until = this.recent.get(user)?.get(peer);
    return until !== undefined && until > now;
  }

  /** The user has no session left: directed presence is over. */
  gone(user: string): void {
    this.directed.delete(user);
  }

  sweep(now = Date.now()): void {
    for (const [user, peers] of this.recent) {
      for (const [peer, until] of peers) if (until <= now) peers.delete(peer);
      if (peers.size === 0) this.recent.delete(user);
    }
  }
}

export function setupStrangers(ctx: ModuleContext<AntiSpamConfig>): void {
  const { config } = ctx;
  const { router, sessions, hosts } = ctx.server;
  const roster = optionalService(ctx, RosterKey, 'roster', 'blocking strangers');
  if (!roster) return;
  const choices = strangersChoice(ctx.server.storage);
  const correspondents = new Correspondents(config.recent_contact_minutes * 60_000);
  ctx.every(60_000, () => correspondents.sweep());

  // The accounts' choices, read again after CHOICE_TTL_MS (a change by the CLI shows then).
  const cached = new Map<string, { choice: StrangersChoice | undefined; until: number }>();
  /** From memory, without waiting, when the choice is known: the hot path of every stanza. */
  const knownChoice = (key: string): boolean | undefined => {
    const entry = cached.get(key);
    if (!entry || entry.until <= Date.now()) return undefined;
    return entry.choice?.block ?? config.block_strangers;
  };
  const blocksStrangers = async (user: Jid): Promise<boolean> => {
    const key = user.toString();
    const known = knownChoice(key);
    if (known !== undefined) return known;
    const entry = { choice: await choices.get(user.domain, user.local), until: Date.now() + CHOICE_TTL_MS };
    cached.set(key, entry);
    return entry.choice?.block ?? config.block_strangers;
  };
  // A choice changed on another cluster node: read again at the next use.
  ctx.invalidation.on('strangers', (key) => (key === ALL ? cached.clear() : void cached.delete(key)));
  ctx.every(CHOICE_TTL_MS, () => {
    const now = Date.now();
    for (const [key, entry] of cached) if (entry.until <= now) cached.delete(key);
  });

  /** Whether `from` is the server, one of its services, or a subdomain of the user's host. */
  const serverSide = (from: Jid, user: Jid): boolean => {
    if (from.local === '' && hosts.has(from.domain)) return true;
    if (hosts.has(from.domain)) return false;
    return router.isLocal(from.domain) || from.domain.endsWith(`.${user.domain}`) || Object.hasOwn(ctx.server.config.components, from.domain);
  };

  /** Stanzas that pass whoever sent them. */
  const alwaysPasses = (stanza: Element, target: 'bare' | 'full'): boolean => {
    const type = stanza.attrs.type;
    if (type === 'error') return true;
    if (stanza.name === 'iq') return type === 'result';
    if (stanza.name === 'presence') return SUBSCRIPTION_TYPES.has(type ?? '');
    // A room's messages to an occupant (as Prosody lets them through).
    return type === 'groupchat' && target === 'full';
  };

  const isContact = async (service: RosterService, user: Jid, from: Jid): Promise<boolean> => {
    const subscription = (await service.item(user, from.bare))?.subscription;
    return subscription !== undefined && subscription !== 'none';
  };

  const gate =
    (target: 'bare' | 'full') =>
    async ({ stanza, from, to }: RouteEvent): Promise<boolean | void> => {
      const user = to.bare;
      if (to.local === '' || from.bare.equals(user) || alwaysPasses(stanza, target)) return;
      // Whether the user blocks strangers at all first: from memory for most stanzas.
      if (!(knownChoice(user.toString()) ?? (await blocksStrangers(user)))) return;
      if (serverSide(from, user)) return;
      if (config.allow_local_users && from.local !== '' && hosts.has(from.domain)) return;
      if (correspondents.knows(user.toString(), from.bare.toString())) return;
      if (await isContact(roster, user, from)) return;
      ctx.log.debug({ from: from.toString(), to: user.toString(), stanza: stanza.name }, 'a stanza from a stranger refused');
      if (stanza.name !== 'presence') router.bounce(stanza, new StanzaError('service-unavailable'));
      return true;
    };
  for (const event of ['message/bare', 'presence/bare'] as const) ctx.hook(event, gate('bare'), Priority.GATE);
  for (const event of ['message/full', 'presence/full', 'iq/full'] as const) ctx.hook(event, gate('full'), Priority.GATE);

  // What the user's clients send: whom they write to.
  const outbound = ({ stanza, to, origin }: PreRouteEvent): void => {
    if (stanza.attrs.to === undefined || !origin.jid || origin.jid.domain !== ctx.domain) return;
    const type = stanza.attrs.type;
    if (type === 'error' || (stanza.name === 'iq' && type === 'result')) return;
    const user = origin.jid.bare.toString();
    // Only for users who block strangers (or whose choice is not known yet).
    if (knownChoice(user) === false) return;
    const peer = to.bare.toString();
    if (stanza.name === 'presence' && (type === undefined || type === 'unavailable')) correspondents.presence(user, peer, type === undefined);
    correspondents.wrote(user, peer);
  };
  for (const kind of ['message', 'presence', 'iq'] as const) for (const event of preEvents(kind)) ctx.hook(event, outbound, Priority.GATE);
  ctx.hook('session/closed', ({ session }) => {
    const user = session.jid?.bare;
    if (user && !sessions.resourcesOf(user).some((s) => s !== session)) correspondents.gone(user.toString());
  });

  // The account's own choice, on its own server.
  const adhoc = optionalService(ctx, AdhocKey, 'adhoc', 'the ad-hoc command on strangers');
  if (!adhoc) return;
  ctx.onUnload(
    adhoc.add({
      node: BLOCK_STRANGERS_NODE,
      name: 'Block Messages From Strangers',
      allowed: (requester) => requester.local !== '' && requester.domain === ctx.domain,
      async start(requester) {
        const user = requester.bare;
        const current = await blocksStrangers(user);
        return {
          status: 'executing',
          form: form(
            'form',
            FORM_TYPE,
            [{ var: 'block_strangers', type: 'boolean', label: 'Refuse messages from addresses not in my contact list', values: [current ? '1' : '0'], required: true }],
            'Messages from strangers',
            'Messages and requests from addresses you have no subscription with are refused (they may still ask to become a contact).',
          ),
          last: true,
          async next(values) {
            const block = parseBoolean('block_strangers', values.get('block_strangers')?.[0]);
            if (block === undefined) throw new StanzaError('not-acceptable', 'the field block_strangers is required');
            await choices.set(user.domain, user.local, { block });
            cached.delete(user.toString());
            await ctx.invalidation.publish('strangers', user.toString());
            ctx.log.info({ jid: user.toString(), block }, 'blocking strangers set by the account');
            return { status: 'completed', notes: [{ type: 'info', text: block ? 'Messages from strangers are now refused.' : 'Messages from strangers are now accepted.' }] };
          },
        };
      },
    }),
  );
}
