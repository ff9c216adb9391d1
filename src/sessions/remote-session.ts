// A session bound on another node of the cluster, as this node sees it (from the shared
// directory): its address, priority and presence. What is handed to it goes to its node's inbox.
import type { Element } from '@xmpp/xml';
import type { Jid } from '../jid.js';
import type { Logger } from '../log.js';
import { SessionData } from '../module-api/keys.js';
import type { StreamError } from '../stream/errors.js';
import type { Session } from './session.js';

/** How a remote session reaches its node (the cluster's inboxes). */
export interface RemoteLink {
  /** Sends `stanza` to `node`, for its local session `to`. */
  forward(node: string, to: Jid, stanza: Element): void;
  /** Asks `node` to end its local session `jid` with a stream error. */
  closeRemote(node: string, jid: Jid, error?: StreamError): void;
}

export class RemoteSession implements Session {
  readonly id: string;
  readonly host: string;
  readonly remoteAddress: string;
  readonly connectedAt: number;
  readonly secure: boolean;
  readonly user: Jid;
  readonly data = new SessionData();
  readonly lastReceivedAt = Date.now();
  readonly hibernating = false;
  readonly handledCount = 0;
  readonly finished = Promise.resolve();
  /** Its node is gone: nothing is forwarded any more. */
  dead = false;

  constructor(
    readonly jid: Jid,
    readonly node: string,
    public priority: number,
    public presence: Element | undefined,
    private readonly link: RemoteLink,
    readonly log: Logger,
    /** What its node published of its connection. */
    connection: { ip?: string; since?: number; secure?: boolean } = {},
  ) {
    this.remoteAddress = connection.ip ?? '';
    this.connectedAt = connection.since ?? Date.now();
    this.secure = connection.secure ?? true;
    this.id = `${node} ${jid.toString()}`;
    this.host = jid.domain;
    this.user = jid.bare;
  }

  get closed(): boolean {
    return this.dead;
  }

  deliver(stanza: Element): void {
    if (!this.dead) this.link.forward(this.node, this.jid, stanza);
  }

  deliverSerialized(stanza: Element): void {
    this.deliver(stanza);
  }

  sendNonza(): void {
    // Negotiation happens on the node that holds the connection.
  }

  close(error?: StreamError): void {
    if (!this.dead) this.link.closeRemote(this.node, this.jid, error);
  }

  end(error?: StreamError): void {
    this.close(error);
  }

  whenHandled(): Promise<number> {
    return Promise.resolve(0);
  }
}
