// Data forms (XEP-0004): building fields and forms, and reading submitted values. Shared by the
// modules that take or give forms (MUC room configuration, pubsub node configuration).
import { xml, type Element } from '@xmpp/xml';
import { StanzaError } from '../stream/errors.js';

export const NS_DATA = 'jabber:x:data';

export type FieldType = 'boolean' | 'fixed' | 'hidden' | 'jid-multi' | 'jid-single' | 'list-multi' | 'list-single' | 'text-multi' | 'text-private' | 'text-single';

export interface FieldSpec {
  var: string;
  type: FieldType;
  label?: string;
  values: string[];
  /** list-single / list-multi options as [value, label]. */
  options?: [string, string][];
  /** The submitter must fill it in (<required/>). */
  required?: boolean;
}

export function field(spec: FieldSpec): Element {
  return xml(
    'field',
    { var: spec.var, type: spec.type, label: spec.label },
    spec.required ? xml('required') : null,
    ...spec.values.map((v) => xml('value', {}, v)),
    ...(spec.options ?? []).map(([value, label]) => xml('option', { label }, xml('value', {}, value))),
  );
}

export function form(type: 'form' | 'result' | 'submit', formType: string, fields: FieldSpec[], title?: string, instructions?: string): Element {
  return xml(
    'x',
    { xmlns: NS_DATA, type },
    title ? xml('title', {}, title) : null,
    instructions ? xml('instructions', {}, instructions) : null,
    field({ var: 'FORM_TYPE', type: 'hidden', values: [formType] }),
    ...fields.map(field),
  );
}

/** The values of each field of a submitted form. */
export type Submitted = Map<string, string[]>;

export function readForm(x: Element): Submitted {
  const values: Submitted = new Map();
  for (const f of x.getChildren('field')) {
    const name = f.attrs.var;
    if (!name) continue;
    values.set(
      name,
      f.getChildren('value').map((v) => v.getText()),
    );
  }
  return values;
}

/** The FORM_TYPE of a form, if it has one. */
export function formType(x: Element): string | undefined {
  for (const f of x.getChildren('field')) if (f.attrs.var === 'FORM_TYPE') return f.getChildText('value') ?? undefined;
  return undefined;
}

/** A data form child of `el` with the given FORM_TYPE, if any. */
export function findForm(el: Element, type: string): Element | undefined {
  return el.getChildren('x', NS_DATA).find((x) => formType(x) === type);
}

export function parseBoolean(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  throw new StanzaError('not-acceptable', `${name}: expected a boolean, not "${value}"`);
}

export function first(values: Submitted, name: string): string | undefined {
  return values.get(name)?.[0];
}
