// Roles, affiliations and who may do what to whom: XEP-0045 §5 (the default roles of §5.1.2,
// the privileges of §5.1.1 and §5.2.1), §8 (moderator use cases), §9 (admin), §10 (owner).
import t from 'tap';
import { StanzaError } from '../../src/stream/errors.js';
import {
  affiliationRank,
  checkAffiliationChange,
  checkListRead,
  checkRoleChange,
  checkRoleListRead,
  defaultRole,
  hasVoice,
  isAffiliation,
  isRole,
  roleAfterAffiliation,
  roleRank,
  type Actor,
  type Affiliation,
  type Role,
} from '../../modules/muc/permissions.js';

/** The stanza error condition `fn` throws, or 'ok'. */
function outcome(fn: () => void): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof StanzaError) return err.condition;
    throw err;
  }
}

const actor = (affiliation: Affiliation, role: Role): Actor => ({ affiliation, role });

t.test('names', async (t) => {
  for (const a of ['owner', 'admin', 'member', 'none', 'outcast']) t.ok(isAffiliation(a), a);
  for (const r of ['moderator', 'participant', 'visitor', 'none']) t.ok(isRole(r), r);
  t.notOk(isAffiliation('moderator'));
  t.notOk(isRole('owner'));
  t.notOk(isAffiliation(undefined));
  t.ok(affiliationRank('owner') > affiliationRank('admin') && affiliationRank('admin') > affiliationRank('member'), 'owner > admin > member');
  t.ok(affiliationRank('member') > affiliationRank('none') && affiliationRank('none') > affiliationRank('outcast'), 'member > none > outcast');
  t.ok(roleRank('moderator') > roleRank('participant') && roleRank('participant') > roleRank('visitor') && roleRank('visitor') > roleRank('none'));
});

t.test('§5.1.2 Table 4: the default role on entering', async (t) => {
  // [affiliation, in a moderated room, in an unmoderated room]; an outcast cannot enter.
  const table: [Affiliation, Role, Role][] = [
    ['owner', 'moderator', 'moderator'],
    ['admin', 'moderator', 'moderator'],
    ['member', 'participant', 'participant'],
    ['none', 'visitor', 'participant'],
    ['outcast', 'none', 'none'],
  ];
  for (const [affiliation, moderated, unmoderated] of table) {
    t.equal(defaultRole(affiliation, true), moderated, `${affiliation}, moderated room`);
    t.equal(defaultRole(affiliation, false), unmoderated, `${affiliation}, unmoderated room`);
  }
});

t.test('§5.1.1 Table 1: participants and moderators have voice, visitors not', async (t) => {
  t.ok(hasVoice('moderator'));
  t.ok(hasVoice('participant'));
  t.notOk(hasVoice('visitor'));
  t.notOk(hasVoice('none'));
});

t.test('roles follow affiliation changes (§9.1, §9.3, §9.4, §10.3, §10.6)', async (t) => {
  t.equal(roleAfterAffiliation('participant', 'outcast', false), 'none', 'banned: removed from the room');
  t.equal(roleAfterAffiliation('visitor', 'member', true), 'participant', 'made a member: at least participant');
  t.equal(roleAfterAffiliation('moderator', 'member', false), 'moderator', 'a moderator made a member stays moderator');
  t.equal(roleAfterAffiliation('participant', 'admin', false), 'moderator', 'made an admin: moderator');
  t.equal(roleAfterAffiliation('visitor', 'owner', true), 'moderator', 'made an owner: moderator');
  t.equal(roleAfterAffiliation('moderator', 'none', true), 'visitor', 'an admin demoted to none in a moderated room: visitor');
  t.equal(roleAfterAffiliation('moderator', 'none', false), 'participant', 'in an unmoderated room: participant');
  t.equal(roleAfterAffiliation('visitor', 'none', true), 'visitor', 'a member made none keeps a lower role');
});

t.test('§8: role changes by moderators', async (t) => {
  const moderator = actor('none', 'moderator');
  const participant = { affiliation: 'none' as const, role: 'participant' as const };
  t.equal(
    outcome(() => checkRoleChange(moderator, participant, 'none')),
    'ok',
    '§8.2: a moderator kicks a participant',
  );
  t.equal(
    outcome(() => checkRoleChange(moderator, participant, 'visitor')),
    'ok',
    '§8.4: a moderator revokes voice',
  );
  t.equal(
    outcome(() => checkRoleChange(moderator, { affiliation: 'none', role: 'visitor' }, 'participant')),
    'ok',
    '§8.3: a moderator grants voice',
  );
  t.equal(
    outcome(() => checkRoleChange(actor('member', 'participant'), participant, 'none')),
    'forbidden',
    'a participant may not kick',
  );
  t.equal(
    outcome(() => checkRoleChange(actor('none', 'visitor'), participant, 'visitor')),
    'forbidden',
    'a visitor may not revoke voice',
  );
  t.equal(
    outcome(() => checkRoleChange(actor('member', 'moderator'), { affiliation: 'owner', role: 'moderator' }, 'none')),
    'not-allowed',
    '§8.2: an admin or owner cannot be kicked',
  );
  t.equal(
    outcome(() => checkRoleChange(actor('none', 'moderator'), { affiliation: 'member', role: 'participant' }, 'visitor')),
    'not-allowed',
    '§8.4: nobody is silenced by someone of a lower affiliation',
  );
  t.equal(
    outcome(() => checkRoleChange(actor('member', 'moderator'), { affiliation: 'member', role: 'participant' }, 'visitor')),
    'ok',
    'same affiliation: allowed',
  );
});

t.test('§9.6, §9.7: granting and revoking moderation is for admins and owners', async (t) => {
  const participant = { affiliation: 'member' as const, role: 'participant' as const };
  t.equal(
    outcome(() => checkRoleChange(actor('admin', 'moderator'), participant, 'moderator')),
    'ok',
    'an admin grants moderation',
  );
  t.equal(
    outcome(() => checkRoleChange(actor('owner', 'moderator'), { affiliation: 'member', role: 'moderator' }, 'participant')),
    'ok',
    'an owner revokes it',
  );
  t.equal(
    outcome(() => checkRoleChange(actor('member', 'moderator'), participant, 'moderator')),
    'forbidden',
    'a moderator who is only a member may not grant it',
  );
  t.equal(
    outcome(() => checkRoleChange(actor('none', 'moderator'), { affiliation: 'none', role: 'moderator' }, 'participant')),
    'forbidden',
    'nor revoke it',
  );
  t.equal(
    outcome(() => checkRoleChange(actor('owner', 'moderator'), { affiliation: 'admin', role: 'moderator' }, 'participant')),
    'not-allowed',
    '§9.7: the moderator role of an admin cannot be revoked',
  );
});

t.test('§9, §10: affiliation changes', async (t) => {
  const change = (by: Affiliation, from: Affiliation, to: Affiliation, self = false, owners = 1) => outcome(() => checkAffiliationChange(by, from, to, self, owners));
  t.equal(change('admin', 'none', 'outcast'), 'ok', '§9.1: an admin bans');
  t.equal(change('admin', 'none', 'member'), 'ok', '§9.3: an admin grants membership');
  t.equal(change('admin', 'member', 'none'), 'ok', '§9.4: an admin revokes it');
  t.equal(change('member', 'none', 'member'), 'forbidden', 'a member may not');
  t.equal(change('none', 'none', 'outcast'), 'forbidden', 'nor may anyone else');
  t.equal(change('admin', 'none', 'admin'), 'forbidden', '§10.6: only owners grant admin status');
  t.equal(change('admin', 'member', 'owner'), 'forbidden', '§10.3: only owners grant owner status');
  t.equal(change('admin', 'admin', 'outcast'), 'not-allowed', '§9.1: an admin cannot ban an admin');
  t.equal(change('admin', 'owner', 'none'), 'not-allowed', 'nor change an owner');
  t.equal(change('owner', 'none', 'admin'), 'ok', '§10.6: an owner grants admin status');
  t.equal(change('owner', 'admin', 'none'), 'ok', '§10.7: an owner revokes it');
  t.equal(change('owner', 'none', 'owner'), 'ok', '§10.3: an owner grants owner status');
  t.equal(change('owner', 'owner', 'admin', false, 2), 'ok', '§10.4: an owner revokes it from another owner');
  t.equal(change('owner', 'owner', 'none', true, 1), 'conflict', '§10.4: the last owner cannot step down');
  t.equal(change('owner', 'owner', 'member', true, 2), 'ok', 'one of two owners can');
  t.equal(change('owner', 'owner', 'outcast', true, 2), 'not-allowed', 'an owner cannot ban itself, even with another owner');
});

t.test('§9.2, §9.5, §10.5, §10.8: who reads the affiliation lists', async (t) => {
  const read = (a: Actor, list: Affiliation, memberListRoles: Role[] = []) => outcome(() => checkListRead(a, list, memberListRoles));
  t.equal(read(actor('admin', 'moderator'), 'outcast'), 'ok', '§9.2: admins read the ban list');
  t.equal(read(actor('admin', 'none'), 'member'), 'ok', '§9.5: admins read the member list');
  t.equal(read(actor('owner', 'none'), 'owner'), 'ok', '§10.5: owners read the owner list');
  t.equal(read(actor('admin', 'moderator'), 'admin'), 'ok', '§10.8: the admin list');
  t.equal(read(actor('member', 'moderator'), 'outcast'), 'forbidden', 'a moderator without privilege may not read the ban list');
  t.equal(read(actor('member', 'participant'), 'owner'), 'forbidden', 'nor the owner list');
  t.equal(read(actor('member', 'participant'), 'member'), 'forbidden', 'the member list is closed by default');
  t.equal(read(actor('member', 'participant'), 'member', ['participant', 'moderator']), 'ok', 'open to the roles the room config names (muc#roomconfig_getmemberlist)');
  t.equal(read(actor('none', 'visitor'), 'member', ['participant', 'moderator']), 'forbidden', 'but not to the others');
  t.equal(read(actor('member', 'none'), 'member', ['participant']), 'forbidden', 'not to someone outside the room');
});

t.test('§8.5, §9.8: who reads the role lists', async (t) => {
  t.equal(
    outcome(() => checkRoleListRead(actor('none', 'moderator'), 'participant')),
    'ok',
    '§8.5: a moderator reads the voice list',
  );
  t.equal(
    outcome(() => checkRoleListRead(actor('member', 'participant'), 'participant')),
    'forbidden',
    'a participant may not',
  );
  t.equal(
    outcome(() => checkRoleListRead(actor('admin', 'none'), 'moderator')),
    'ok',
    '§9.8: an admin reads the moderator list',
  );
  t.equal(
    outcome(() => checkRoleListRead(actor('none', 'moderator'), 'moderator')),
    'forbidden',
    'a moderator who is no admin may not',
  );
});
