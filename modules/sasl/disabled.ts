// A disabled account (XEP-0133 disable-user) cannot log in: its credentials are checked as any
// other's, then the success becomes <account-disabled/> (RFC 6120 §6.5.1). Checked after the
// credentials, so the answer tells only someone who knows the password that the account exists.
import type { Accounts } from '../../src/auth/accounts.js';
import type { Logger } from '../../src/log.js';
import { SaslFailure, type SaslStep } from './mechanism.js';

export async function unlessDisabled(accounts: Accounts, log: Logger, step: SaslStep): Promise<SaslStep> {
  if (step.kind !== 'success' || !(await accounts.isDisabled(step.user))) return step;
  log.info({ jid: step.user.bare.toString() }, 'login refused: the account is disabled');
  throw new SaslFailure('account-disabled', 'the account is disabled');
}
