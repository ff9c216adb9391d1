// A room's configuration (XEP-0045 §10.2, §15.5.3 muc#roomconfig): the defaults, the form an
// owner fills in, and reading what the owner submitted.
import type { Element } from '@xmpp/xml';
import { StanzaError } from '../../src/stream/errors.js';
import { first, form, parseBoolean, readForm, formType, type FieldSpec } from './forms.js';
import { MUC } from './ns.js';
import type { Role } from './permissions.js';

export type Whois = 'moderators' | 'anyone';
export type AllowPm = 'anyone' | 'participants' | 'moderators' | 'none';

export interface RoomConfig {
  name: string;
  description: string;
  language: string;
  persistent: boolean;
  public: boolean;
  membersOnly: boolean;
  moderated: boolean;
  passwordProtected: boolean;
  password: string;
  /** Most occupants at once. */
  maxOccupants: number;
  /** Who may see occupants' real JIDs: moderators (semi-anonymous) or anyone (non-anonymous). */
  whois: Whois;
  /** Most messages of discussion history sent on entering. */
  historyLength: number;
  /** Whether occupants (not only moderators) may invite others. */
  allowInvites: boolean;
  allowPm: AllowPm;
  /** Whether participants (not only moderators) may change the subject. */
  changeSubject: boolean;
  /** Roles that may read the member list (admins and owners always may). */
  memberListRoles: Role[];
  /** Whether the discussion is archived (status 170; the room archive hooks in here). */
  logging: boolean;
}

/** The limits and defaults a service gives its rooms. */
export interface ConfigLimits {
  maxOccupants: number;
  maxHistory: number;
  defaultHistory: number;
}

export function defaultConfig(limits: ConfigLimits): RoomConfig {
  return {
    name: '',
    description: '',
    language: '',
    persistent: false,
    public: true,
    membersOnly: false,
    moderated: false,
    passwordProtected: false,
    password: '',
    maxOccupants: limits.maxOccupants,
    whois: 'moderators',
    historyLength: Math.min(limits.defaultHistory, limits.maxHistory),
    allowInvites: false,
    allowPm: 'anyone',
    changeSubject: false,
    memberListRoles: ['moderator'],
    logging: false,
  };
}

/** A stored configuration, with defaults for anything missing (a newer field, say). */
export function restoreConfig(json: string, limits: ConfigLimits): RoomConfig {
  const stored = JSON.parse(json) as Partial<RoomConfig>;
  return { ...defaultConfig(limits), ...stored };
}

const bool = (b: boolean) => (b ? '1' : '0');
const ROLE_OPTIONS: [string, string][] = [
  ['moderator', 'Moderators'],
  ['participant', 'Participants'],
  ['visitor', 'Visitors'],
];

function occupantOptions(max: number): [string, string][] {
  const steps = [5, 10, 20, 30, 50, 100, 200, 500, 1000, 2000, 5000, 10000].filter((n) => n < max);
  return [...steps, max].map((n) => [String(n), String(n)]);
}

/** The configuration form (§10.2 example 163) with the current values. */
export function configForm(config: RoomConfig, limits: ConfigLimits, roomJid: string): Element {
  const fields: FieldSpec[] = [
    { var: 'muc#roomconfig_roomname', type: 'text-single', label: 'Name', values: [config.name] },
    { var: 'muc#roomconfig_roomdesc', type: 'text-single', label: 'Description', values: [config.description] },
    { var: 'muc#roomconfig_lang', type: 'text-single', label: 'Natural language of the discussion', values: [config.language] },
    { var: 'muc#roomconfig_persistentroom', type: 'boolean', label: 'Persistent (kept when the last occupant leaves)', values: [bool(config.persistent)] },
    { var: 'muc#roomconfig_publicroom', type: 'boolean', label: 'Listed in the public room directory', values: [bool(config.public)] },
    { var: 'muc#roomconfig_membersonly', type: 'boolean', label: 'Members only', values: [bool(config.membersOnly)] },
    { var: 'muc#roomconfig_moderatedroom', type: 'boolean', label: 'Moderated (only occupants with voice may speak)', values: [bool(config.moderated)] },
    { var: 'muc#roomconfig_passwordprotectedroom', type: 'boolean', label: 'Password protected', values: [bool(config.passwordProtected)] },
    { var: 'muc#roomconfig_roomsecret', type: 'text-private', label: 'Password', values: [config.password] },
    {
      var: 'muc#roomconfig_maxusers',
      type: 'list-single',
      label: 'Maximum number of occupants',
      values: [String(config.maxOccupants)],
      options: occupantOptions(limits.maxOccupants),
    },
    {
      var: 'muc#roomconfig_whois',
      type: 'list-single',
      label: 'Who may discover real JIDs',
      values: [config.whois],
      options: [
        ['moderators', 'Moderators only'],
        ['anyone', 'Anyone'],
      ],
    },
    { var: 'muc#maxhistoryfetch', type: 'text-single', label: `Messages of history sent on entering (at most ${limits.maxHistory})`, values: [String(config.historyLength)] },
    { var: 'muc#roomconfig_allowinvites', type: 'boolean', label: 'Occupants may invite others', values: [bool(config.allowInvites)] },
    {
      var: 'muc#roomconfig_allowpm',
      type: 'list-single',
      label: 'Who may send private messages',
      values: [config.allowPm],
      options: [
        ['anyone', 'Anyone'],
        ['participants', 'Anyone with voice'],
        ['moderators', 'Moderators only'],
        ['none', 'Nobody'],
      ],
    },
    { var: 'muc#roomconfig_changesubject', type: 'boolean', label: 'Occupants may change the subject', values: [bool(config.changeSubject)] },
    { var: 'muc#roomconfig_getmemberlist', type: 'list-multi', label: 'Roles that may see the member list', values: config.memberListRoles, options: ROLE_OPTIONS },
    { var: 'muc#roomconfig_enablelogging', type: 'boolean', label: 'Archive the discussion', values: [bool(config.logging)] },
  ];
  return form('form', MUC.ROOMCONFIG, fields, `Configuration of ${roomJid}`, 'Complete this form to configure the room.');
}

function oneOf<T extends string>(name: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new StanzaError('not-acceptable', `${name}: "${value}" is not one of ${allowed.join(', ')}`);
}

function count(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'none') return max;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new StanzaError('not-acceptable', `${name}: expected a whole number of at least ${min}`);
  return Math.min(n, max);
}

/**
 * The configuration after a submitted form (§10.2): fields not in the form keep their value;
 * a value out of range or of the wrong kind is not-acceptable; a form of another FORM_TYPE is
 * bad-request.
 */
export function applyConfigForm(current: RoomConfig, x: Element, limits: ConfigLimits): RoomConfig {
  const type = formType(x);
  if (type !== undefined && type !== MUC.ROOMCONFIG) throw new StanzaError('bad-request', `a form of type ${MUC.ROOMCONFIG} was expected`);
  const v = readForm(x);
  const next: RoomConfig = { ...current };
  const text = (name: string) => first(v, name);
  const b = (name: string) => parseBoolean(name, first(v, name));
  next.name = text('muc#roomconfig_roomname') ?? next.name;
  next.description = text('muc#roomconfig_roomdesc') ?? next.description;
  next.language = text('muc#roomconfig_lang') ?? next.language;
  next.persistent = b('muc#roomconfig_persistentroom') ?? next.persistent;
  next.public = b('muc#roomconfig_publicroom') ?? next.public;
  next.membersOnly = b('muc#roomconfig_membersonly') ?? next.membersOnly;
  next.moderated = b('muc#roomconfig_moderatedroom') ?? next.moderated;
  next.passwordProtected = b('muc#roomconfig_passwordprotectedroom') ?? next.passwordProtected;
  if (v.has('muc#roomconfig_roomsecret')) next.password = text('muc#roomconfig_roomsecret') ?? '';
  next.maxOccupants = count('muc#roomconfig_maxusers', text('muc#roomconfig_maxusers'), 1, limits.maxOccupants) ?? next.maxOccupants;
  next.whois = oneOf('muc#roomconfig_whois', text('muc#roomconfig_whois'), ['moderators', 'anyone'] as const) ?? next.whois;
  next.historyLength = count('muc#maxhistoryfetch', text('muc#maxhistoryfetch'), 0, limits.maxHistory) ?? next.historyLength;
  next.allowInvites = b('muc#roomconfig_allowinvites') ?? next.allowInvites;
  next.allowPm = oneOf('muc#roomconfig_allowpm', text('muc#roomconfig_allowpm'), ['anyone', 'participants', 'moderators', 'none'] as const) ?? next.allowPm;
  next.changeSubject = b('muc#roomconfig_changesubject') ?? next.changeSubject;
  if (v.has('muc#roomconfig_getmemberlist')) {
    next.memberListRoles = v.get('muc#roomconfig_getmemberlist')!.map((r) => oneOf('muc#roomconfig_getmemberlist', r, ['moderator', 'participant', 'visitor'] as const)!);
  }
  next.logging = b('muc#roomconfig_enablelogging') ?? next.logging;
  // A password given without the flag protects the room (some clients send only the secret).
  if (!v.has('muc#roomconfig_passwordprotectedroom') && v.has('muc#roomconfig_roomsecret')) next.passwordProtected = next.password !== '';
  if (next.passwordProtected && next.password === '') {
    throw new StanzaError('not-acceptable', 'a password-protected room needs a password (muc#roomconfig_roomsecret)');
  }
  if (!next.passwordProtected) next.password = '';
  return next;
}
