// Node configuration (modules/pubsub/node-config.ts) and access models (access.ts): forms read
// and checked, publish-options as preconditions, item limits, who may read a node.
import t from 'tap';
import { xml } from '@xmpp/xml';
import { accessError } from '../../modules/pubsub/access.js';
import { applyConfigForm, applyPublishOptions, checkPreconditions, configForm, itemLimit, PEP_DEFAULTS } from '../../modules/pubsub/node-config.js';
import type { RosterItem } from '../../modules/roster/service.js';
import { StanzaError } from '../../src/stream/errors.js';
import { dataForm } from '../helpers/pubsub.js';

const PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';
const NODE_CONFIG = 'http://jabber.org/protocol/pubsub#node_config';
const LIMIT = 100;

const failure = (fn: () => unknown): { condition?: string; app?: string } => {
  try {
    fn();
  } catch (err) {
    if (err instanceof StanzaError) return { condition: err.condition, app: err.appCondition?.name };
    throw err;
  }
  return {};
};

t.test('publish-options: a new node takes them; an existing one must match', async (t) => {
  const bookmarks = dataForm(PUBLISH_OPTIONS, {
    'pubsub#persist_items': 'true',
    'pubsub#max_items': 'max',
    'pubsub#access_model': 'whitelist',
    'pubsub#send_last_published_item': 'never',
  });
  const config = applyPublishOptions(PEP_DEFAULTS, bookmarks, LIMIT);
  t.same([config.access_model, config.max_items, config.send_last_published_item, config.persist_items], ['whitelist', 'max', 'never', true]);
  t.equal(itemLimit(config, LIMIT), LIMIT, 'max = the server limit');
  t.doesNotThrow(() => checkPreconditions(config, bookmarks, LIMIT), 'the same options pass');
  t.same(
    failure(() => checkPreconditions(PEP_DEFAULTS, bookmarks, LIMIT)),
    { condition: 'conflict', app: 'precondition-not-met' },
    'other options fail',
  );
  t.same(
    failure(() => checkPreconditions(PEP_DEFAULTS, dataForm(PUBLISH_OPTIONS, { 'pubsub#unknown': 'x' }), LIMIT)),
    { condition: 'conflict', app: 'precondition-not-met' },
    'an option this server lacks',
  );
  t.same(failure(() => applyPublishOptions(PEP_DEFAULTS, dataForm(PUBLISH_OPTIONS, { 'pubsub#max_items': '1000' }), LIMIT)).app, 'precondition-not-met', 'beyond the limit');
  t.doesNotThrow(() => checkPreconditions(PEP_DEFAULTS, dataForm(PUBLISH_OPTIONS, { 'pubsub#access_model': 'presence' }), LIMIT), 'the defaults match');
});

t.test('configure: the form round-trips; bad values are not-acceptable', async (t) => {
  const form = configForm(PEP_DEFAULTS);
  const submitted = xml('x', { xmlns: 'jabber:x:data', type: 'submit' }, ...form.getChildren('field'));
  t.same(applyConfigForm(PEP_DEFAULTS, submitted, LIMIT), PEP_DEFAULTS, 'the form as given changes nothing');
  const changed = applyConfigForm(PEP_DEFAULTS, dataForm(NODE_CONFIG, { 'pubsub#max_items': '5', 'pubsub#notify_retract': '0' }), LIMIT);
  t.same([changed.max_items, changed.notify_retract], [5, false]);
  t.equal(failure(() => applyConfigForm(PEP_DEFAULTS, dataForm(NODE_CONFIG, { 'pubsub#access_model': 'authorize' }), LIMIT)).condition, 'not-acceptable');
  t.equal(failure(() => applyConfigForm(PEP_DEFAULTS, dataForm(NODE_CONFIG, { 'pubsub#max_items': '0' }), LIMIT)).condition, 'not-acceptable');
  t.equal(failure(() => applyConfigForm(PEP_DEFAULTS, dataForm(PUBLISH_OPTIONS, {}), LIMIT)).condition, 'bad-request', 'a form of another type');
  t.equal(itemLimit({ ...PEP_DEFAULTS, persist_items: false }, LIMIT), 0, 'nothing kept when not persistent');
});

t.test('access models', async (t) => {
  const item = (subscription: RosterItem['subscription'], groups: string[] = []): RosterItem => ({ jid: 'bob@localhost', subscription, ask: false, approved: false, groups });
  const model = (access_model: typeof PEP_DEFAULTS.access_model, roster_groups_allowed: string[] = []) => ({ ...PEP_DEFAULTS, access_model, roster_groups_allowed });
  const app = (e: StanzaError | undefined) => e && `${e.condition}/${e.appCondition?.name ?? ''}`;
  t.equal(accessError(model('whitelist'), { owner: true }), undefined, 'the owner, always');
  t.equal(app(accessError(model('open'), { owner: false, affiliation: 'outcast' })), 'forbidden/', 'an outcast, never');
  t.equal(accessError(model('open'), { owner: false }), undefined, 'open: anyone');
  t.equal(accessError(model('presence'), { owner: false, rosterItem: item('from') }), undefined, 'presence: from');
  t.equal(app(accessError(model('presence'), { owner: false, rosterItem: item('to') })), 'not-authorized/presence-subscription-required', 'presence: not to');
  t.equal(accessError(model('roster', ['Friends']), { owner: false, rosterItem: item('none', ['Friends']) }), undefined, 'roster: in a group');
  t.equal(app(accessError(model('roster', ['Friends']), { owner: false, rosterItem: item('both', ['Work']) })), 'not-authorized/not-in-roster-group');
  t.equal(accessError(model('whitelist'), { owner: false, affiliation: 'member' }), undefined, 'whitelist: members');
  t.equal(app(accessError(model('whitelist'), { owner: false, rosterItem: item('both') })), 'not-allowed/closed-node');
});
