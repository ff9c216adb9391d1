import { startTestServer } from '../test/helpers/harness.js';
import { client } from '@xmpp/client';
const stops: any[] = [];
const ts = await startTestServer({ teardown: (f: any) => stops.push(f) });
await ts.addUser('alice');
const xmpp = client({ service: `xmpps://127.0.0.1:${ts.tlsPort}`, domain: 'localhost', username: 'alice', password: 'correct horse battery' });
xmpp.on('error', (e: any) => console.log('error', e.message));
xmpp.on('status', (s: any) => console.log('status', s));
xmpp.on('element', (e: any) => console.log('in', e.toString().slice(0, 200)));
xmpp.on('send', (e: any) => console.log('out', e.toString().slice(0, 200)));
try { console.log('online', (await xmpp.start()).toString()); } catch (e: any) { console.log('fail', e.message); }
await xmpp.stop().catch(() => {});
for (const f of stops) await f();
