// Self-service machine-to-machine credentials end to end (issue 9 item 4): a local
// account logs in, creates a client on the Credentials page, reads its secret once,
// gets a token with the seed page's curl request, reads /hapi/data with it, rotates
// (the old secret is refused) and revokes (token requests are refused). Screenshots
// of each step are kept under the output folder. Run as the other browser tests:
//
//   node --test tests/browser/
//
// HAPI_E2E_OUT=dir writes the output there (kept); otherwise a temporary folder,
// removed after a success unless HAPI_E2E_KEEP=1.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { Processes, freePort, launch, needTools, serverBin } from './harness.mjs';

const USER = 'carol';
const OTHER = 'dave';
const PASSWORD = 'a credentials password';
const DATA = '/hapi/data?dataset=e2e/field&start=2024-01-01T00:00Z&stop=2024-01-01T00:10Z';

let out;
let keep = false;
let failed = false;
let procs;
let context;
let otherContext;
let hapi; // { url, proc }

before(async () => {
  needTools();
  out = process.env.HAPI_E2E_OUT ? resolve(process.env.HAPI_E2E_OUT) : mkdtempSync(join(tmpdir(), 'hapi-creds-'));
  keep = Boolean(process.env.HAPI_E2E_OUT || process.env.HAPI_E2E_KEEP);
  mkdirSync(out, { recursive: true });
  procs = new Processes(out);
  const port = await freePort();
  hapi = { url: `http://127.0.0.1:${port}` };
  const file = join(out, 'hapi.toml');
  writeFileSync(
    file,
    `data_dir = "${join(out, 'data')}"

[about]
id = "creds-e2e"
title = "Credentials test server"
contact = "test@example.org"

[auth]
public_url = "${hapi.url}"

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
  const csv = Array.from({ length: 60 }, (_, i) => `${new Date(Date.UTC(2024, 0, 1, 0, i)).toISOString()},${i}.5`);
  writeFileSync(join(out, 'field.csv'), `${csv.join('\n')}\n`);
  await procs.run('ingest', serverBin, ['ingest', '--config', file, '--dataset', 'e2e/field', join(out, 'field.csv')]);
  await procs.run('users', serverBin, ['users', 'add', '--config', file, USER], {}, `${PASSWORD}\n`);
  await procs.run('users-other', serverBin, ['users', 'add', '--config', file, OTHER], {}, `${PASSWORD}\n`);
  hapi.proc = await procs.serveHapi(file, port);
  context = await launch(out);
});

after(async () => {
  await context?.close().catch(() => {});
  await otherContext?.close().catch(() => {});
  await procs?.stopAll().catch(() => {});
  if (keep || failed) console.log(`# kept ${out} (screenshots, logs)`);
  else rmSync(out, { recursive: true, force: true });
});

const shot = (page, name) => page.screenshot({ path: join(out, `${name}.png`), fullPage: true });

/** The seed page's token request, run by curl as a user would: status and body. */
function seedCurl(id, secret) {
  const r = spawnSync(
    'curl',
    ['-sS', '-w', '\n%{http_code}', '-d', `client_id=${id}`, '-d', `client_secret=${secret}`, '-d', 'grant_type=client_credentials', '-d', 'scope=swe_hapiserver', `${hapi.url}/oauth/token`],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  return { status: Number(lines.pop()), body: JSON.parse(lines.join('\n')) };
}

/** Logs `page` in as `user`, starting from the Credentials page. */
async function logIn(page, user) {
  await page.goto(`${hapi.url}/portal/credentials`);
  await page.waitForURL((u) => u.pathname === '/auth/login');
  await page.getByLabel('User').fill(user);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${hapi.url}/portal/credentials`);
}

test('a user makes, uses, rotates and revokes their own credentials', async (t) => {
  t.after(() => {
    if (t.passed === false) failed = true;
  });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => /Content Security Policy|Refused to/.test(m.text()) && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  try {
    await logIn(page, USER);
    await page.getByText('You have no clients yet.').waitFor();
    await shot(page, '01-credentials');

    // New M2M request: the client id at once, no secret yet.
    await page.getByRole('button', { name: 'New M2M client' }).click();
    const row = page.locator('#clients tbody tr');
    await row.first().waitFor();
    assert.equal(await row.count(), 1);
    const id = (await row.first().locator('code').innerText()).trim();
    assert.match(id, /^[0-9a-f]{32}$/);
    await shot(page, '02-created');

    // Retrieve credentials: the secret, once.
    await page.getByRole('button', { name: 'Retrieve the secret' }).click();
    await page.locator('#client-secret').waitFor();
    assert.equal((await page.locator('#client-id').innerText()).trim(), id);
    const secret = (await page.locator('#client-secret').innerText()).trim();
    assert.ok(secret.length >= 32, secret);
    await shot(page, '03-secret');
    await page.goto(`${hapi.url}/portal/credentials`);
    assert.ok(!(await page.content()).includes(secret), 'the secret is never shown again');
    assert.equal(await page.getByRole('button', { name: 'Retrieve the secret' }).count(), 0);

    // The seed's curl request gives a token, which reads data.
    const got = seedCurl(id, secret);
    assert.equal(got.status, 200, JSON.stringify(got.body));
    const data = await fetch(`${hapi.url}${DATA}`, { headers: { authorization: `Bearer ${got.body.access_token}` } });
    assert.equal(data.status, 200);
    assert.equal((await data.text()).trim().split('\n').length, 10);
    await page.reload();
    assert.match(await row.first().locator('td').nth(2).innerText(), /^\d{4}-\d\d-\d\dT/, 'the last token is listed');
    await shot(page, '04-used');
    // On a phone the list fits the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the credentials page is ${overflow} px wider than a phone`);
    await shot(page, '04a-phone');
    await page.setViewportSize({ width: 1100, height: 800 });

    // Another user, in a browser of their own, neither sees the client nor can revoke it
    // (their own page's CSRF token, the first user's id: the answer of an unknown id).
    otherContext = await launch(join(out, 'other'));
    const other = await otherContext.newPage();
    await logIn(other, OTHER);
    assert.ok(!(await other.content()).includes(id));
    await shot(other, '04b-other-user');
    const csrf = await other.locator('input[name=csrf]').first().getAttribute('value');
    const post = (clientId) =>
      other.request.post(`${hapi.url}/portal/credentials`, { form: { action: 'revoke', id: clientId, csrf } });
    const theirs = await post(id);
    const unknown = await post('no-such-client');
    assert.equal(theirs.status(), 404);
    assert.equal((await theirs.text()).replaceAll(id, ''), await unknown.text());
    assert.equal(seedCurl(id, secret).status, 200, 'still the first user\'s, still active');

    // Rotate: a new secret once, the old one refused.
    await page.getByRole('button', { name: 'Rotate the secret' }).click();
    await page.locator('#client-secret').waitFor();
    const rotated = (await page.locator('#client-secret').innerText()).trim();
    assert.notEqual(rotated, secret);
    await shot(page, '05-rotated');
    assert.equal(seedCurl(id, secret).status, 401, 'the old secret is refused');
    assert.equal(seedCurl(id, rotated).status, 200);

    // Revoke: token requests refused.
    await page.getByRole('button', { name: 'Revoke' }).click();
    await page.getByText(`Client ${id} revoked`).waitFor();
    await shot(page, '06-revoked');
    const refused = seedCurl(id, rotated);
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error, 'invalid_client');
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});
