// XEP-0202 Entity Time: the server's UTC time and its numeric time zone offset, both in the
// XEP-0082 profiles (dateTime in UTC, TZD as ±hh:mm).
import { xml } from '@xmpp/xml';
import { defineModule } from '../../src/module-api/define.js';

export const NS_TIME = 'urn:xmpp:time';

/** The XEP-0082 time zone definition (±hh:mm) of the local offset at `date`. */
export function tzo(date: Date): string {
  const minutes = -date.getTimezoneOffset();
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** The XEP-0082 dateTime of `date` in UTC, to the second. */
export function utc(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export default defineModule({
  name: 'time',
  setup(ctx) {
    ctx.feature(NS_TIME);
    ctx.iq.get(NS_TIME, 'time', (iq) => {
      const now = new Date();
      return iq.reply(xml('time', { xmlns: NS_TIME }, xml('tzo', {}, tzo(now)), xml('utc', {}, utc(now))));
    });
  },
});
