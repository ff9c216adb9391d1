// Archive ids: 26 characters, time first, issued in increasing order by one generator, in one
// millisecond too, across the carry between the two halves of the random part and when a
// millisecond's ids run out.
import t from 'tap';
import { ID_PATTERN, IdGenerator, idTime } from '../../src/storage/archive/ids.js';

const T0 = Date.UTC(2026, 11, 3);

t.test('many ids in one millisecond and the next: well-formed, increasing, carrying their time', async (t) => {
  let clock = T0;
  const ids = new IdGenerator(() => clock);
  let last = '';
  let bad = 0;
  for (let i = 0; i < 100_000; i++) {
    if (i === 50_000) clock++;
    const id = ids.next();
    if (!ID_PATTERN.test(id) || idTime(id) !== clock || id <= last) bad++;
    last = id;
  }
  t.equal(bad, 0);
});

t.test('the low half carries into the high half, and an exhausted millisecond borrows the next', async (t) => {
  const clock = T0;
  const ids = new IdGenerator(() => clock);
  // The random part's halves, set to their edges (they are private: the paths are rare at random).
  const halves = ids as unknown as { high: number; low: number };
  const first = ids.next();
  const high = halves.high;
  halves.low = 2 ** 40 - 1;
  const carried = ids.next();
  t.ok(carried > first, 'increasing across the carry');
  t.equal(halves.high, high + 1, 'the high half stepped');
  t.equal(idTime(carried), clock, 'same millisecond');
  halves.high = 2 ** 40 - 1;
  halves.low = 2 ** 40 - 1;
  const borrowed = ids.next();
  t.ok(borrowed > carried, 'increasing when the millisecond is exhausted');
  t.equal(idTime(borrowed), clock + 1, 'in the next millisecond');
  const after = ids.next();
  t.ok(after > borrowed && idTime(after) === clock + 1, 'and it goes on from there though the clock still reads the one before');
});

t.test('the clock going back does not make an id smaller', async (t) => {
  let clock = T0 + 1000;
  const ids = new IdGenerator(() => clock);
  const a = ids.next();
  clock = T0;
  const b = ids.next();
  t.ok(b > a);
  t.equal(idTime(b), T0 + 1000);
});
