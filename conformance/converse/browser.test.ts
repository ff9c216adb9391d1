// The built-in web client in a real browser: Debian's chromium, headless, driven by
// playwright-core, with a fresh profile. The page at /chat (Converse.js from the npm package)
// loads without a console error, logs in over the WebSocket transport as a user created with
// the CLI, and a message typed into it reaches a second client (@xmpp/client over TCP), whose
// reply appears in the page. Every request the page makes, the WebSocket included, goes to the
// server itself. Skipped, saying why, when chromium is missing; a failure under
// STARLING_REQUIRE_SERVICES=1.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import t, { type Test } from 'tap';
import { connect, xml } from '../../test/helpers/clients.js';
import { configDir, loopbackServerToml, runStarling } from '../../test/helpers/cli.js';
import { startTestServer } from '../../test/helpers/harness.js';
import { httpBases } from '../../test/helpers/http.js';
import { servicesRequired } from '../../test/helpers/services.js';

const CHROMIUM = process.env.STARLING_CHROMIUM ?? '/usr/bin/chromium';
const PASSWORD = 'a browser password';
const STEP_MS = 30_000;

async function launch(t: Test): Promise<BrowserContext> {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'starling-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    // The test server's certificate is self-signed: accepted by this browser context only.
    ignoreHTTPSErrors: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  t.teardown(async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  });
  return context;
}

if (!existsSync(CHROMIUM)) {
  const why = `${CHROMIUM} is missing (apt-get install chromium, or set STARLING_CHROMIUM)`;
  if (servicesRequired) t.fail(`chromium is required (STARLING_REQUIRE_SERVICES=1): ${why}`);
  else t.plan(0, `the web client browser test (conformance/converse/browser.test.ts): ${why}`);
} else {
  t.test('Converse.js in chromium: loads clean, logs in, messages a TCP client both ways', async (t) => {
    // The accounts are made by the CLI, in the data directory the server then runs on.
    const { dir, config } = configDir(t, 'browser', loopbackServerToml);
    const passwordFile = path.join(dir, 'password');
    writeFileSync(passwordFile, `${PASSWORD}\n`);
    for (const user of ['alice@localhost', 'bob@localhost']) {
      const r = runStarling(['adduser', user, '--password-file', passwordFile, '--config', config]);
      t.equal(r.code, 0, `starling adduser ${user}`, { err: r.err });
    }
    const ts = await startTestServer(t, { data_dir: path.join(dir, 'data') });
    const bob = await connect(ts, 'bob', { password: PASSWORD });
    t.teardown(() => bob.stop());

    // Over the HTTPS listener, as a browser reaches the server directly (5281): the WebSocket is
    // wss, so the session counts as encrypted and SASL is offered.
    const base = httpBases(ts).https;
    const origin = new URL(base).origin;
    const context = await launch(t);
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    const requests: string[] = [];
    const problems: string[] = [];
    context.on('request', (r) => void requests.push(r.url()));
    page.on('websocket', (ws) => void requests.push(ws.url()));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console error: ${m.text()} (${m.location().url}:${m.location().lineNumber})`);
    });
    page.on('pageerror', (err) => void problems.push(`page error: ${err.message}`));
    page.on('requestfailed', (r) => void problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));

    await page.goto(`${base}/chat`);
    await page.locator('input[name="jid"]').fill('alice');
    await page.locator('input[name="password"]').fill(PASSWORD);
    await page.locator('converse-login-form [type="submit"]').click();
    await page.locator('converse-user-profile').waitFor();
    t.pass('logged in');

    // Open the chat with bob (Converse's own URL route), then type into its composer.
    await page.evaluate("location.hash = 'converse/chat?jid=bob@localhost'");
    const composer = page.locator('.chat-textarea');
    await composer.waitFor();
    const text = 'Hello from the browser, Bob! ✓';
    await composer.fill(text);
    await composer.press('Enter');
    const received = await bob.next((el) => el.name === 'message' && el.getChildText('body') === text, STEP_MS);
    t.match(received.attrs.from, /^alice@localhost\/.+/, 'the message reached the TCP client, from the page');

    const reply = 'Hello back from TCP, Alice';
    await bob.send(xml('message', { to: received.attrs.from, type: 'chat', id: 'reply-1' }, xml('body', {}, reply)));
    await page.locator('.chat-msg__text', { hasText: reply }).waitFor();
    t.pass('the reply appears in the page');

    t.same(problems, [], 'no console errors, page errors or failed requests');
    t.ok(requests.length > 0, `${requests.length} requests recorded`);
    const elsewhere = requests.filter((u) => new URL(u.replace(/^ws/, 'http')).origin !== origin && !u.startsWith('data:') && !u.startsWith('blob:'));
    t.same(elsewhere, [], `every request goes to ${origin}`);
    t.ok(
      requests.some((u) => u.startsWith(`${origin.replace(/^http/, 'ws')}/xmpp-websocket`)),
      'the page talks over the WebSocket',
    );
  });
}
