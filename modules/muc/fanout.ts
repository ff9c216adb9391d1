// Fan-out that stays fast in big rooms: a stanza is serialised once, and each recipient gets
// that string with only 'to' put in front. Delivery goes through Router.routeSerialized: the
// routing hooks and each session's 'stanza/out' hooks still run (with a cheap per-recipient
// element that shares the children), so blocking, stream management's count and queue, and a
// resend after resumption all see a real stanza; only the serialisation is not repeated.
import { Element, escapeXML } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import type { Router } from '../../src/router/router.js';

/** Where a room's stanzas go: an occupant's real full JID, with what fan-out needs prepared. */
export class Recipient {
  readonly str: string;
  readonly escaped: string;

  constructor(
    readonly jid: Jid,
    /** On a domain this server serves to clients (its delivery can be awaited: see Sender). */
    readonly local: boolean,
  ) {
    this.str = jid.toString();
    this.escaped = escapeXML(this.str);
  }
}

/** A stanza without 'to', serialised once for any number of recipients. */
export class Prepared {
  private rest: string | undefined;

  constructor(readonly base: Element) {}

  /** The stanza serialised without 'to' (serialises once if not yet). */
  get xml(): string {
    this.rest ??= this.base.toString().slice(this.base.name.length + 1);
    return `<${this.base.name}${this.rest}`;
  }

  /** Characters of the stanza as each recipient gets it, less its 'to' (serialises once if not yet). */
  get size(): number {
    this.rest ??= this.base.toString().slice(this.base.name.length + 1);
    return this.base.name.length + 1 + this.rest.length;
  }

  /** The stanza addressed to `to`: an element sharing the base's children, and its serialisation. */
  to(to: Recipient): { stanza: Element; xml: string } {
    const base = this.base;
    // Serialised on first use: '<name' + the attributes and children of the base.
    this.rest ??= base.toString().slice(base.name.length + 1);
    const stanza = new Element(base.name, { to: to.str, ...base.attrs });
    // A copy of the list (not of the children): a hook that appends to one copy (a delay on a
    // resend) does not touch the others.
    stanza.children = base.children.slice();
    return { stanza, xml: `<${base.name} to="${to.escaped}"${this.rest}` };
  }
}

/**
 * Sends the room's stanzas. Deliveries to users of this server are awaited, so a room's
 * stanzas reach each occupant in the room's order (presence before history before subject,
 * a join before the messages after it) whatever the depth of the routing hooks. Stanzas to
 * other domains are handed to the router without waiting: that is where a wait could come
 * back to the room itself (a remote or service address) and never end.
 */
export class Sender {
  constructor(private readonly router: Router) {}

  /** One prepared stanza to many recipients. */
  many(prepared: Prepared, from: Jid, recipients: Iterable<Recipient>, pending: Promise<void>[]): void {
    for (const r of recipients) {
      const { stanza, xml } = prepared.to(r);
      if (r.local) pending.push(this.router.routeSerialized(stanza, xml, from, r.jid));
      else void this.router.route(stanza);
    }
  }

  /** One stanza (with its 'to') to one recipient. */
  one(stanza: Element, to: Recipient, pending: Promise<void>[]): void {
    stanza.attrs.to = to.str;
    if (to.local) pending.push(this.router.route(stanza));
    else void this.router.route(stanza);
  }

  /** A stanza to anyone (replies, invitations): never waited on. */
  send(stanza: Element): void {
    void this.router.route(stanza);
  }
}
