// The shapes of XEP-0133 commands: a form to fill in once, or an answer without a form; their
// fields in the http://jabber.org/protocol/admin FORM_TYPE, and the JIDs they take.
import { tryParseJid, type Jid } from '../../src/jid.js';
import { StanzaError } from '../../src/stream/errors.js';
import { form, type FieldSpec, type Submitted } from '../../src/xml/data-forms.js';
import type { AdhocCommand, DoneStep, Note } from '../adhoc/service.js';

export const NS_ADMIN = 'http://jabber.org/protocol/admin';

export interface AdminCommandSpec {
  /** The use case: the node is http://jabber.org/protocol/admin#<name>. */
  name: string;
  label: string;
}

/** A command with one form (XEP-0133's flows): shown at execute, completed with its submission. */
export interface FormCommandSpec extends AdminCommandSpec {
  title: string;
  instructions: string;
  fields(): FieldSpec[] | Promise<FieldSpec[]>;
  complete(values: Submitted, requester: Jid): DoneStep | Promise<DoneStep>;
}

/** A command that answers at once (the counts, delete-motd). */
export interface ImmediateCommandSpec extends AdminCommandSpec {
  run(requester: Jid): DoneStep | Promise<DoneStep>;
}

export type CommandSpec = FormCommandSpec | ImmediateCommandSpec;

export function adminCommand(spec: CommandSpec, allowed: (requester: Jid) => boolean): AdhocCommand {
  return {
    node: `${NS_ADMIN}#${spec.name}`,
    name: spec.label,
    allowed,
    async start(requester) {
      if ('run' in spec) return spec.run(requester);
      return {
        status: 'executing',
        form: form('form', NS_ADMIN, await spec.fields(), spec.title, spec.instructions),
        last: true,
        next: (values) => spec.complete(values, requester),
      };
    },
  };
}

/** The end of a command with a result form of the admin FORM_TYPE. */
export function result(fields: FieldSpec[], notes?: Note[]): DoneStep {
  return { status: 'completed', form: form('result', NS_ADMIN, fields), notes };
}

export function done(...notes: Note[]): DoneStep {
  return { status: 'completed', notes };
}

export const info = (text: string): Note => ({ type: 'info', text });
export const error = (text: string): Note => ({ type: 'error', text });

/** The non-empty values of a field; a required one that is empty is not-acceptable. */
export function values(submitted: Submitted, name: string, required: boolean): string[] {
  const found = (submitted.get(name) ?? []).map((v) => v.trim()).filter((v) => v !== '');
  if (required && found.length === 0) throw new StanzaError('not-acceptable', `the field ${name} is required`);
  return found;
}

export function value(submitted: Submitted, name: string, required: true): string;
export function value(submitted: Submitted, name: string, required: boolean): string | undefined;
export function value(submitted: Submitted, name: string, required: boolean): string | undefined {
  return values(submitted, name, required)[0];
}

/** A JID of a user of this host (bare, or full when `full` allows it). */
export function userJid(text: string, domain: string, full = false): Jid {
  const jid = tryParseJid(text);
  if (!jid || !jid.local) throw new StanzaError('jid-malformed', `"${text}" is not a user's JID`);
  if (jid.domain !== domain) throw new StanzaError('not-acceptable', `${jid.bare.toString()} is not an account of ${domain}`);
  if (!full && !jid.isBare) throw new StanzaError('not-acceptable', `expected an account (user@host), not ${text}`);
  return jid;
}

export const accountjidField = (label: string): FieldSpec => ({ var: 'accountjid', type: 'jid-single', label, values: [], required: true });
export const accountjidsField = (label: string): FieldSpec => ({ var: 'accountjids', type: 'jid-multi', label, values: [], required: true });
