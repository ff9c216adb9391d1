// A node's configuration (XEP-0060 §16.4, pubsub#node_config): the options this server
// implements, their defaults, the configuration form, and how a submitted form (configure,
// create with configuration, XEP-0223 publish-options) is read and checked against a node.
import type { Element } from '@xmpp/xml';
import { StanzaError } from '../../src/stream/errors.js';
import { form, formType, NS_DATA, readForm, type FieldSpec, type Submitted } from '../../src/xml/data-forms.js';
import { NODE_CONFIG, PUBLISH_OPTIONS, pubsubError } from './ns.js';

export const ACCESS_MODELS = ['open', 'presence', 'roster', 'whitelist'] as const;
export type AccessModel = (typeof ACCESS_MODELS)[number];
export const SEND_LAST = ['never', 'on_sub', 'on_sub_and_presence'] as const;
export type SendLast = (typeof SEND_LAST)[number];

export interface NodeConfig {
  title: string;
  access_model: AccessModel;
  /** Roster groups whose contacts may access a node with the roster access model. */
  roster_groups_allowed: string[];
  persist_items: boolean;
  /** Items kept; 'max' = the server's limit. */
  max_items: number | 'max';
  send_last_published_item: SendLast;
  notify_retract: boolean;
  notify_delete: boolean;
}

/** XEP-0163 §4.1: PEP nodes default to the presence access model and send the last item on presence. */
export const PEP_DEFAULTS: NodeConfig = {
  title: '',
  access_model: 'presence',
  roster_groups_allowed: [],
  persist_items: true,
  max_items: 1,
  send_last_published_item: 'on_sub_and_presence',
  notify_retract: true,
  notify_delete: true,
};

/** The general service (pubsub.<host>): open nodes that keep ten items and send the last one to a new subscriber. */
export const SERVICE_DEFAULTS: NodeConfig = { ...PEP_DEFAULTS, access_model: 'open', max_items: 10, send_last_published_item: 'on_sub' };

type Key = keyof NodeConfig;

interface Option<K extends Key> {
  type: FieldSpec['type'];
  label: string;
  choices?: readonly string[];
  render(value: NodeConfig[K]): string[];
  parse(values: string[], limit: number): NodeConfig[K];
}

const one = (values: string[]): string => {
  if (values.length !== 1) throw new Error('expected one value');
  return values[0]!;
};
const bool = (values: string[]): boolean => {
  const v = one(values);
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw new Error(`expected a boolean, not "${v}"`);
};
const choice =
  <T extends string>(choices: readonly T[]) =>
  (values: string[]): T => {
    const v = one(values);
    if (!(choices as readonly string[]).includes(v)) throw new Error(`expected one of ${choices.join(', ')}, not "${v}"`);
    return v as T;
  };
const yesNo = (v: boolean) => [v ? '1' : '0'];

const OPTIONS: { [K in Key]: Option<K> } = {
  title: { type: 'text-single', label: 'A friendly name for the node', render: (v) => [v], parse: (v) => v.join('') },
  access_model: { type: 'list-single', label: 'Who may subscribe and retrieve items', choices: ACCESS_MODELS, render: (v) => [v], parse: choice(ACCESS_MODELS) },
  roster_groups_allowed: { type: 'list-multi', label: 'Roster groups allowed to subscribe', render: (v) => v, parse: (v) => v },
  persist_items: { type: 'boolean', label: 'Persist items to storage', render: yesNo, parse: bool },
  max_items: {
    type: 'text-single',
    label: 'Max # of items to persist ("max" for the server limit)',
    render: (v) => [String(v)],
    parse(values, limit) {
      const v = one(values);
      if (v === 'max') return 'max';
      const n = Number(v);
      if (!/^\d+$/.test(v) || n < 1) throw new Error(`expected a positive integer or "max", not "${v}"`);
      if (n > limit) throw new Error(`this server keeps at most ${limit} items per node`);
      return n;
    },
  },
  send_last_published_item: { type: 'list-single', label: 'When to send the last published item', choices: SEND_LAST, render: (v) => [v], parse: choice(SEND_LAST) },
  notify_retract: { type: 'boolean', label: 'Notify subscribers when items are removed', render: yesNo, parse: bool },
  notify_delete: { type: 'boolean', label: 'Notify subscribers when the node is deleted', render: yesNo, parse: bool },
};

const KEYS = Object.keys(OPTIONS) as Key[];
const varOf = (key: Key) => `pubsub#${key}`;
const keyOf = (name: string): Key | undefined => KEYS.find((k) => varOf(k) === name);

/** The node configuration form (type form for the owner to fill, result to show). */
export function configForm(config: NodeConfig, type: 'form' | 'result' = 'form'): Element {
  const fields: FieldSpec[] = KEYS.map((key) => {
    const option = OPTIONS[key] as Option<Key>;
    return { var: varOf(key), type: option.type, label: option.label, values: option.render(config[key]), options: option.choices?.map((c) => [c, c]) };
  });
  return form(type, NODE_CONFIG, fields);
}

/** The submitted fields of a form, FORM_TYPE aside; a form of another type is bad-request. */
function submitted(x: Element, expected: string): Submitted {
  if (x.attrs.xmlns !== NS_DATA) throw new StanzaError('bad-request', 'expected a jabber:x:data form');
  const type = formType(x);
  if (type !== undefined && type !== expected) throw new StanzaError('bad-request', `expected a form of type ${expected}, not ${type}`);
  const values = readForm(x);
  values.delete('FORM_TYPE');
  return values;
}

/** `base` with the submitted fields applied; `fail` makes the error for a field it cannot take. */
function applyFields(base: NodeConfig, values: Submitted, limit: number, fail: (message: string) => StanzaError): NodeConfig {
  const next: NodeConfig = { ...base };
  for (const [name, v] of values) {
    const key = keyOf(name);
    if (!key) throw fail(`${name} is not a node option this server supports`);
    try {
      (next as unknown as Record<Key, unknown>)[key] = (OPTIONS[key] as Option<Key>).parse(v, limit);
    } catch (err) {
      throw fail(`${name}: ${(err as Error).message}`);
    }
  }
  return next;
}

/** A configuration with the submitted form applied (configure, create); not-acceptable names a bad field. */
export function applyConfigForm(base: NodeConfig, x: Element, limit: number): NodeConfig {
  if (x.attrs.type === 'cancel') return base;
  return applyFields(base, submitted(x, NODE_CONFIG), limit, (message) => new StanzaError('not-acceptable', message));
}

const preconditionNotMet = (message: string) => pubsubError('conflict', 'precondition-not-met', message);

/** The configuration a new node gets from publish-options; an option this server lacks is precondition-not-met. */
export function applyPublishOptions(base: NodeConfig, x: Element, limit: number): NodeConfig {
  return applyFields(base, submitted(x, PUBLISH_OPTIONS), limit, preconditionNotMet);
}

/**
 * XEP-0060 §7.1.5 / XEP-0223: publish-options are preconditions. For a new node they are its
 * configuration; for an existing one, each option must equal the node's, else
 * conflict + precondition-not-met.
 */
export function checkPreconditions(config: NodeConfig, x: Element, limit: number): void {
  const values = submitted(x, PUBLISH_OPTIONS);
  const wanted = applyFields(config, values, limit, preconditionNotMet);
  for (const name of values.keys()) {
    const key = keyOf(name)!;
    if (JSON.stringify(wanted[key]) !== JSON.stringify(config[key])) {
      throw preconditionNotMet(`the node's ${name} is ${JSON.stringify(config[key])}`);
    }
  }
}

/** How many items a node with this configuration keeps. */
export function itemLimit(config: NodeConfig, limit: number): number {
  if (!config.persist_items) return 0;
  return config.max_items === 'max' ? limit : Math.min(config.max_items, limit);
}
