// Registration with approval end to end (issue 9 item 5): someone asks for an account
// on the login page, cannot log in while it waits, the operator approves it with
// `hapi-server users approve`, the new user logs in, sees the data, and changes the
// password on the Account page (the old one is then refused). Forged form posts are
// refused, every page carries the Content-Security-Policy, and the forms fit a phone.
// Screenshots of each step are kept under the output folder. Run as the other browser
// tests:
//
//   node --test tests/browser/
//
// HAPI_E2E_OUT=dir writes the output there (kept); otherwise a temporary folder,
// removed after a success unless HAPI_E2E_KEEP=1.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { Processes, freePort, launch, needTools, serverBin } from './harness.mjs';

const EMAIL = 'erin@example.org';
const PASSWORD = 'a registration password';
const NEW_PASSWORD = 'a changed password';

let out;
let keep = false;
let failed = false;
let procs;
let context;
let hapi; // { url, proc, config }

before(async () => {
  needTools();
  out = process.env.HAPI_E2E_OUT ? resolve(process.env.HAPI_E2E_OUT) : mkdtempSync(join(tmpdir(), 'hapi-register-'));
  keep = Boolean(process.env.HAPI_E2E_OUT || process.env.HAPI_E2E_KEEP);
  mkdirSync(out, { recursive: true });
  procs = new Processes(out);
  const port = await freePort();
  hapi = { url: `http://127.0.0.1:${port}`, config: join(out, 'hapi.toml') };
  writeFileSync(
    hapi.config,
    `data_dir = "${join(out, 'data')}"

[about]
id = "register-e2e"
title = "Registration test server"
contact = "test@example.org"

[auth]
public_url = "${hapi.url}"

[auth.issuer]
allow_registration = true

[auth.access]
authenticated = ["e2e/*"]

[[dataset]]
id = "e2e/field"
title = "A field"
info = '''{"parameters":[
  {"name":"Time","type":"isotime","units":"UTC","fill":null,"length":24},
  {"name":"B","type":"double","units":"nT","fill":null}],"cadence":"PT1M",
  "startDate":"2024-01-01T00:00:00Z","stopDate":"2024-01-02T00:00:00Z"}'''
`,
  );
  hapi.proc = await procs.serveHapi(hapi.config, port);
  context = await launch(out);
});

after(async () => {
  await context?.close().catch(() => {});
  await procs?.stopAll().catch(() => {});
  if (keep || failed) console.log(`# kept ${out} (screenshots, logs)`);
  else rmSync(out, { recursive: true, force: true });
});

const shot = (page, name) => page.screenshot({ path: join(out, `${name}.png`), fullPage: true });

/** The policy every page must carry: scripts from this server only, never inline. */
function assertCsp(response, what) {
  const csp = response.headers()['content-security-policy'] ?? '';
  assert.match(csp, /script-src 'self'/, `${what}: ${csp}`);
  assert.doesNotMatch(csp, /unsafe-inline/, what);
}

async function logIn(page, user, password) {
  const r = await page.goto(`${hapi.url}/auth/login`);
  assertCsp(r, 'login');
  await page.getByLabel('User').fill(user);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

test('a sign-up waits for approval, then logs in and changes its password', async (t) => {
  t.after(() => {
    if (t.passed === false) failed = true;
  });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => /Content Security Policy|Refused to/.test(m.text()) && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  try {
    // From the login page to the sign-up form.
    await page.goto(`${hapi.url}/hapi`);
    await page.waitForURL((u) => u.pathname === '/auth/login');
    await page.getByRole('link', { name: 'Ask for one' }).click();
    await page.waitForURL(`${hapi.url}/auth/register`);
    await shot(page, '01-sign-up-form');

    // Forged posts change nothing: no token, and a token that is not this browser's.
    const forged = await page.request.post(`${hapi.url}/auth/register`, {
      form: { email: 'mallory@example.org', password: PASSWORD, confirm: PASSWORD },
    });
    assert.equal(forged.status(), 403);
    const wrong = await page.request.post(`${hapi.url}/auth/register`, {
      form: { email: 'mallory@example.org', password: PASSWORD, confirm: PASSWORD, csrf: 'not-the-token' },
    });
    assert.equal(wrong.status(), 403);
    assertCsp(wrong, 'the refusal');

    // Two different passwords: the form again, with the address kept and the reason.
    await page.getByLabel('E-mail address').fill(EMAIL);
    await page.getByLabel('Password (at least 8 characters)').fill(PASSWORD);
    await page.getByLabel('The password again').fill(`${PASSWORD}!`);
    await page.getByRole('button', { name: 'Ask for an account' }).click();
    await page.getByText('The two passwords differ.').waitFor();
    assert.equal(await page.getByLabel('E-mail address').inputValue(), EMAIL);
    await page.getByLabel('Password (at least 8 characters)').fill(PASSWORD);
    await page.getByLabel('The password again').fill(PASSWORD);
    await page.getByRole('button', { name: 'Ask for an account' }).click();
    await page.getByText('waits for an operator\'s approval').waitFor();
    await shot(page, '02-requested');

    // Waiting: the right password gets no session.
    await logIn(page, EMAIL, PASSWORD);
    await page.getByText('Your account waits for an operator\'s approval').waitFor();
    const me = await context.cookies(hapi.url);
    assert.ok(!me.some((c) => c.name === 'hapi_session'), 'no session while waiting');
    assert.equal((await page.request.get(`${hapi.url}/hapi/catalog`)).status(), 401);
    await shot(page, '03-waiting');

    // The operator approves it on the command line.
    await procs.run('approve', serverBin, ['users', 'approve', '--config', hapi.config, EMAIL]);

    await logIn(page, EMAIL, PASSWORD);
    await page.waitForURL(`${hapi.url}/hapi`);
    await page.getByRole('link', { name: 'e2e/field' }).first().waitFor();
    await shot(page, '04-approved');

    // The password change: the current one first, then the new one twice.
    await page.getByRole('link', { name: 'Account' }).click();
    await page.waitForURL(`${hapi.url}/portal/account`);
    await page.getByLabel('Current password').fill('not my password');
    await page.getByLabel('New password (at least 8 characters)').fill(NEW_PASSWORD);
    await page.getByLabel('The new password again').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Change the password' }).click();
    await page.getByText('The current password is wrong.').waitFor();
    await page.getByLabel('Current password').fill(PASSWORD);
    await page.getByLabel('New password (at least 8 characters)').fill(NEW_PASSWORD);
    await page.getByLabel('The new password again').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Change the password' }).click();
    await page.getByText('Your password is changed.').waitFor();
    await shot(page, '05-password-changed');
    // Still logged in here, with the new session.
    const r = await page.goto(`${hapi.url}/portal/account`);
    assertCsp(r, 'account');
    assert.match(await page.locator('main').innerText(), new RegExp(`Logged in as ${EMAIL}`));

    // Log out; the old password is refused, the new one works.
    await page.goto(`${hapi.url}/auth/logout`);
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByText('Your session has ended.').waitFor();
    await logIn(page, EMAIL, PASSWORD);
    await page.getByText('Wrong user name or password.').waitFor();
    await logIn(page, EMAIL, NEW_PASSWORD);
    await page.waitForURL(`${hapi.url}/hapi`);

    // On a phone: the forms fit the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    for (const [path, name] of [['/auth/register', '06-phone-sign-up'], ['/portal/account', '07-phone-account']]) {
      await page.goto(`${hapi.url}${path}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${path} is ${overflow} px wider than a phone`);
      await shot(page, name);
    }
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});
