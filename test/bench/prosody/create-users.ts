// Writes bench accounts straight into Prosody's internal storage (prosodyctl register takes
// about a second per user). The format is mod_auth_internal_hashed's (Prosody 0.11/0.12):
//
//   DATA/<host, %xx-escaped>/accounts/<user, %xx-escaped>.dat
//   return {
//   	["iteration_count"] = 4096;
//   	["salt"] = "...";
//   	["stored_key"] = "<hex SHA-1 StoredKey>";
//   	["server_key"] = "<hex SHA-1 ServerKey>";
//   };
//
// SCRAM-SHA-1 (Prosody's default password_hash), salt used as its raw string bytes, one salt
// and one derivation shared by every user (Prosody still runs PBKDF2 on every PLAIN login).
//
//   npx tsx test/bench/prosody/create-users.ts --data DIR --host localhost --count N [--prefix bench] [--password X] [--iterations 4096]
import { createHash, createHmac, pbkdf2Sync, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    data: { type: 'string' },
    host: { type: 'string', default: 'localhost' },
    count: { type: 'string', default: '5000' },
    prefix: { type: 'string', default: 'bench' },
    password: { type: 'string', default: 'bench-password' },
    iterations: { type: 'string', default: '4096' },
  },
});
if (!values.data) throw new Error('--data DIR is required');

/** Prosody's datamanager path encoding: every non-alphanumeric byte as %xx. */
const encode = (s: string) => s.replace(/[^A-Za-z0-9]/g, (c) => [...Buffer.from(c)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''));

const iterations = Number(values.iterations);
const salt = randomUUID();
const salted = pbkdf2Sync(Buffer.from(values.password!, 'utf8'), Buffer.from(salt, 'utf8'), iterations, 20, 'sha1');
const storedKey = createHash('sha1').update(createHmac('sha1', salted).update('Client Key').digest()).digest('hex');
const serverKey = createHmac('sha1', salted).update('Server Key').digest('hex');
const body = `return {\n\t["iteration_count"] = ${iterations};\n\t["salt"] = "${salt}";\n\t["stored_key"] = "${storedKey}";\n\t["server_key"] = "${serverKey}";\n};\n`;

const dir = path.join(values.data, encode(values.host!), 'accounts');
mkdirSync(dir, { recursive: true });
const count = Number(values.count);
for (let i = 0; i < count; i++) writeFileSync(path.join(dir, `${encode(`${values.prefix}${i}`)}.dat`), body);
console.log(`${count} Prosody accounts written to ${dir} (SCRAM-SHA-1, ${iterations} iterations)`);
