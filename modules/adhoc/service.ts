// What the adhoc module provides to other modules (ctx.use(AdhocKey)): a place to add XEP-0050
// commands. A command is a chain of steps: each step is a data form to fill in, or the end.
import type { Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import { serviceKey } from '../../src/module-api/keys.js';
import type { Submitted } from '../../src/xml/data-forms.js';

export const NS_COMMANDS = 'http://jabber.org/protocol/commands';

export interface Note {
  type: 'info' | 'warn' | 'error';
  text: string;
}

/** A form the requester fills in; its submission goes to `next`. */
export interface FormStep {
  status: 'executing';
  /** A jabber:x:data form of type "form". */
  form: Element;
  notes?: Note[];
  /** Submitting this form completes the command (the action offered is "complete", else "next"). */
  last: boolean;
  /** The next step for the submitted values; throws StanzaError for values it refuses (the step stays). */
  next(values: Submitted): CommandStep | Promise<CommandStep>;
}

/** The end of a command, with an optional result form (type "result") and notes. */
export interface DoneStep {
  status: 'completed';
  form?: Element;
  notes?: Note[];
}

export type CommandStep = FormStep | DoneStep;

export interface AdhocCommand {
  /** The command node (XEP-0133: http://jabber.org/protocol/admin#add-user, ...). */
  node: string;
  /** Its human-readable name in disco#items. */
  name: string;
  /** Who may see and run it; everyone else gets forbidden. */
  allowed(requester: Jid): boolean;
  /** The first step, for an execute without a session. */
  start(requester: Jid): CommandStep | Promise<CommandStep>;
}

export interface AdhocService {
  /** Adds a command to the host's commands; returns the undo. A node is added once. */
  add(command: AdhocCommand): () => void;
}

export const AdhocKey = serviceKey<AdhocService>('adhoc');
