// XEP-0377 Spam Reporting: a <report/> inside an <item/> of a XEP-0191 block request is kept
// with the block (through the blocking service's onBlock), the host's admins get a chat message
// about it, and they list the reports with an ad-hoc command (and `starling reports`).
import { xml, type Element } from '@xmpp/xml';
import type { ModuleContext } from '../../src/module-api/define.js';
import { StanzaError } from '../../src/stream/errors.js';
import { form } from '../../src/xml/data-forms.js';
import { AdhocKey } from '../adhoc/service.js';
import { BlockingKey, type BlockItem } from '../blocking/service.js';
import { admins, isAdmin } from './admins.js';
import type { AntiSpamConfig } from './config.js';
import { TokenBucket } from '../../src/token-bucket.js';
import { optionalService } from './uses.js';
import { ReportStore, describeReport, type Report, type StanzaRef } from './store.js';

export const NS_REPORTING = 'urn:xmpp:reporting:1';
export const REASONS = ['urn:xmpp:reporting:spam', 'urn:xmpp:reporting:abuse'];
const NS_SID = 'urn:xmpp:sid:0';
export const REPORTS_NODE = 'urn:starling:anti-spam:reports';
const FORM_TYPE = 'urn:starling:anti-spam';
const MAX_TEXT = 4000;
const MAX_STANZA_IDS = 50;

/** The report of an <item/>, checked; undefined when it carries none. */
function readReport(item: BlockItem): Omit<Report, 'id' | 'createdAt' | 'reporter'> | undefined {
  const report = item.element.getChild('report', NS_REPORTING);
  if (!report) return undefined;
  const reason = report.attrs.reason;
  if (typeof reason !== 'string' || !REASONS.includes(reason)) {
    throw new StanzaError('bad-request', `a report's reason must be one of ${REASONS.join(', ')}, not "${reason ?? ''}"`);
  }
  const text = report.getChild('text', NS_REPORTING)?.getText();
  const stanzaIds: StanzaRef[] = report
    .getChildren('stanza-id', NS_SID)
    .map((s: Element) => ({ id: String(s.attrs.id ?? ''), by: String(s.attrs.by ?? '') }))
    .filter((s) => s.id !== '');
  if (stanzaIds.length > MAX_STANZA_IDS) throw new StanzaError('not-acceptable', `a report names at most ${MAX_STANZA_IDS} messages`);
  return { reported: item.jid.toString(), reason, stanzaIds, ...(text ? { text: text.slice(0, MAX_TEXT) } : {}) };
}

export function setupReports(ctx: ModuleContext<AntiSpamConfig>): void {
  const blocking = optionalService(ctx, BlockingKey, 'blocking', 'abuse reporting (XEP-0377)');
  if (!blocking) return;
  const store = ReportStore.migrated(ctx.server.storage);
  // Each reporter's allowance, so one account cannot flood the admins (and the table).
  const allowances = new Map<string, TokenBucket>();
  const allowed = (reporter: string): boolean => {
    let bucket = allowances.get(reporter);
    if (!bucket) allowances.set(reporter, (bucket = new TokenBucket({ rate: ctx.config.reports_per_hour / 3600, burst: ctx.config.reports_per_hour }, Date.now())));
    return bucket.take(Date.now());
  };
  ctx.every(600_000, () => {
    for (const [reporter, bucket] of allowances) if (bucket.full(Date.now())) allowances.delete(reporter);
  });

  ctx.feature(NS_REPORTING);
  for (const reason of REASONS) ctx.feature(reason);

  const notify = async (report: Report) => {
    const text = `Abuse report: ${describeReport(report)}`;
    for (const admin of admins(ctx)) {
      await ctx.server.router.route(xml('message', { type: 'chat', from: ctx.domain, to: admin.toString() }, xml('body', {}, text)));
    }
  };

  ctx.onUnload(
    blocking.onBlock({
      check(user, items) {
        for (const item of items) readReport(item);
      },
      async blocked(user, items) {
        for (const item of items) {
          const report = readReport(item);
          if (!report) continue;
          if (!allowed(user.toString())) {
            ctx.log.info({ reporter: user.toString(), reported: report.reported }, `more than ${ctx.config.reports_per_hour} abuse reports in an hour: report dropped, block made`);
            continue;
          }
          const stored = await store.add(ctx.domain, { ...report, reporter: user.toString() });
          ctx.log.info({ reporter: stored.reporter, reported: stored.reported, reason: stored.reason }, 'abuse report received');
          await notify(stored);
        }
      },
    }),
  );

  const adhoc = optionalService(ctx, AdhocKey, 'adhoc', 'the ad-hoc command listing abuse reports');
  if (!adhoc) return;
  ctx.onUnload(
    adhoc.add({
      node: REPORTS_NODE,
      name: 'List Abuse Reports',
      allowed: (requester) => isAdmin(ctx, requester),
      async start() {
        const reports = await store.list(ctx.domain);
        return {
          status: 'completed',
          form: form('result', FORM_TYPE, [{ var: 'reports', type: 'text-multi', label: `Abuse reports (newest first, at most 100)`, values: reports.map(describeReport) }]),
          notes: [{ type: 'info', text: `${reports.length} report${reports.length === 1 ? '' : 's'}` }],
        };
      },
    }),
  );
}
