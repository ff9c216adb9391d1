// The command sessions of the adhoc module (XEP-0050 §3.3): one map per requester, a timeout
// renewed by each request, expired sessions told apart from unknown ones, the oldest session
// dropped past the limit, and the sweep.
import t from 'tap';
import { xml } from '@xmpp/xml';
import { CommandSessions } from '../../modules/adhoc/sessions.js';
import type { FormStep } from '../../modules/adhoc/service.js';

const step: FormStep = { status: 'executing', form: xml('x'), last: true, next: () => ({ status: 'completed' }) };

t.test('sessions belong to their requester and node', async (t) => {
  const sessions = new CommandSessions(1000, 10);
  const s = sessions.open('a@h/1', 'n', step, 0);
  t.equal(sessions.find('a@h/1', s.id, 'n', 10), s);
  t.equal(sessions.find('a@h/2', s.id, 'n', 10), undefined, 'another resource');
  t.equal(sessions.find('a@h/1', s.id, 'other', 10), undefined, 'another node');
  sessions.close('a@h/1', s.id);
  t.equal(sessions.find('a@h/1', s.id, 'n', 10), undefined, 'closed');
});

t.test('each request renews the timeout; past it the session has expired, once', async (t) => {
  const sessions = new CommandSessions(1000, 10);
  const s = sessions.open('a@h/1', 'n', step, 0);
  t.equal(sessions.find('a@h/1', s.id, 'n', 900), s);
  t.equal(sessions.find('a@h/1', s.id, 'n', 1800), s, 'renewed at 900');
  t.equal(sessions.find('a@h/1', s.id, 'n', 2801), 'expired');
  t.equal(sessions.find('a@h/1', s.id, 'n', 2802), undefined, 'then gone');
});

t.test('the oldest session goes past the limit; the sweep forgets long-expired ones', async (t) => {
  const sessions = new CommandSessions(1000, 2);
  const first = sessions.open('a@h/1', 'n', step, 0);
  const second = sessions.open('a@h/1', 'n', step, 0);
  const third = sessions.open('a@h/1', 'n', step, 0);
  t.equal(sessions.find('a@h/1', first.id, 'n', 1), undefined);
  t.equal(sessions.find('a@h/1', second.id, 'n', 1), second);
  t.equal(sessions.sweep(1500), 0, 'expired at 1001, remembered for one more timeout');
  t.equal(sessions.sweep(2002), 2);
  t.equal(sessions.find('a@h/1', third.id, 'n', 2003), undefined);
});
