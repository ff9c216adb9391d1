// XEP-0115 §5: the verification string of a disco#info answer, and the checks of §5.4 that a
// client's answer must pass before its hash may be trusted (and cached for everyone).
import { createHash } from 'node:crypto';
import type { Element } from '@xmpp/xml';
import type { DiscoInfo, DiscoInfoIdentity } from '../disco/service.js';

const NS_DATA = 'jabber:x:data';

/** XEP-0115 'hash' names (the IANA Hash Function Textual Names) this server can compute. */
const ALGORITHMS: Record<string, string> = {
  'sha-1': 'sha1',
  'sha-224': 'sha224',
  'sha-256': 'sha256',
  'sha-384': 'sha384',
  'sha-512': 'sha512',
};

export function supportedHash(name: string | undefined): boolean {
  return name !== undefined && Object.hasOwn(ALGORITHMS, name);
}

/** "i;octet" collation (RFC 4790 §9.3): compares the UTF-8 octets, not UTF-16 code units. */
function octets(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function compareIdentities(a: DiscoInfoIdentity, b: DiscoInfoIdentity): number {
  return octets(a.category, b.category) || octets(a.type, b.type) || octets(a.lang ?? '', b.lang ?? '') || octets(a.name ?? '', b.name ?? '');
}

/** The FORM_TYPE of an extended-information form, when it is a hidden field with one value. */
function formType(form: Element): string | undefined {
  const field = form.getChildren('field').find((f) => f.attrs.var === 'FORM_TYPE');
  if (!field || field.attrs.type !== 'hidden') return undefined;
  return field.getChildText('value') ?? undefined;
}

/** The string S of XEP-0115 §5.1, from identities, features and XEP-0128 forms. */
export function verificationString(info: DiscoInfo): string {
  let s = '';
  for (const i of [...info.identities].sort(compareIdentities)) s += `${i.category}/${i.type}/${i.lang ?? ''}/${i.name ?? ''}<`;
  for (const f of [...info.features].sort(octets)) s += `${f}<`;
  const forms = info.forms
    .map((form) => ({ form, type: formType(form) }))
    .filter((f): f is { form: Element; type: string } => f.type !== undefined)
    .sort((a, b) => octets(a.type, b.type));
  for (const { form, type } of forms) {
    s += `${type}<`;
    const fields = form.getChildren('field').filter((f) => f.attrs.var !== undefined && f.attrs.var !== 'FORM_TYPE');
    for (const field of fields.sort((a, b) => octets(a.attrs.var!, b.attrs.var!))) {
      s += `${field.attrs.var}<`;
      for (const value of field
        .getChildren('value')
        .map((v) => v.getText())
        .sort(octets))
        s += `${value}<`;
    }
  }
  return s;
}

/** The 'ver' of XEP-0115 §5.1: base64 of the hash of S in UTF-8. */
export function capsVer(info: DiscoInfo, hash: string): string {
  const algorithm = ALGORITHMS[hash];
  if (!algorithm) throw new Error(`unsupported caps hash "${hash}"`);
  return createHash(algorithm).update(verificationString(info), 'utf8').digest('base64');
}

/**
 * Reads a disco#info <query/> answer. `wellFormed` is false when XEP-0115 §5.4 says to treat
 * the whole answer as ill-formed: a repeated identity or feature, two forms with one
 * FORM_TYPE, or a FORM_TYPE with differing values. Forms without a hidden FORM_TYPE are left
 * out, as §5.4 says to ignore them.
 */
export function readDiscoInfo(query: Element): { info: DiscoInfo; wellFormed: boolean } {
  let wellFormed = true;
  const identities: DiscoInfoIdentity[] = [];
  const seenIdentities = new Set<string>();
  for (const el of query.getChildren('identity')) {
    const identity: DiscoInfoIdentity = { category: el.attrs.category ?? '', type: el.attrs.type ?? '' };
    if (el.attrs.name !== undefined) identity.name = el.attrs.name;
    if (el.attrs['xml:lang'] !== undefined) identity.lang = el.attrs['xml:lang'];
    const key = JSON.stringify([identity.category, identity.type, identity.lang ?? '', identity.name ?? '']);
    if (seenIdentities.has(key)) wellFormed = false;
    seenIdentities.add(key);
    identities.push(identity);
  }
  const features: string[] = [];
  const seenFeatures = new Set<string>();
  for (const el of query.getChildren('feature')) {
    const v = el.attrs.var;
    if (v === undefined) continue;
    if (seenFeatures.has(v)) wellFormed = false;
    seenFeatures.add(v);
    features.push(v);
  }
  const forms: Element[] = [];
  const seenTypes = new Set<string>();
  for (const form of query.getChildren('x', NS_DATA)) {
    const field = form.getChildren('field').find((f) => f.attrs.var === 'FORM_TYPE');
    if (field && new Set(field.getChildren('value').map((v) => v.getText())).size > 1) wellFormed = false;
    const type = formType(form);
    if (type === undefined) continue;
    if (seenTypes.has(type)) wellFormed = false;
    seenTypes.add(type);
    forms.push(form);
  }
  return { info: { identities, features, forms }, wellFormed };
}
