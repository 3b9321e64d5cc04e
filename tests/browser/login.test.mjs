// The browser login end to end: a real OpenID provider (tests/oidc/idp.mjs), the real
// server binary, and Debian's Chromium driven headless by playwright-core.
//
//   node --test tests/browser/
//
// Needs `npm ci --prefix tests/oidc` (playwright-core and oidc-provider live there),
// /usr/bin/chromium (or CHROMIUM=path) and a built server: target/debug/hapi-server, or
// HAPI_SERVER_BIN=path. scripts/test.sh provides all three. HAPI_E2E_KEEP=1 keeps the
// temporary directory (configuration, logs, screenshot); it is also kept on failure.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Processes, freePort, launch, needTools, oidcDir, serverBin } from './harness.mjs';

const DATASET = 'e2e/magnetometer';
const AUDIENCE = 'urn:test:hapi';
const SCOPE = 'swe_hapiserver';
const USER = 'alice';

let tmp;
/** Everything this file starts, to be stopped by pid whatever happens. */
let procs;
let browserContext;
let failed = false;
let idp; // { url, proc }
let hapi; // { url, proc }
/** Where /hapi led after the logout. */
let afterLogout;
const log = (name) => procs.log(name);

const csv = () => {
  const lines = [];
  for (let i = 0; i < 120; i++) {
    const t = new Date(Date.UTC(2024, 0, 1, 0, i)).toISOString();
    lines.push(`${t},${(i * 0.5).toFixed(1)},${(100 - i).toFixed(1)}`);
  }
  return `${lines.join('\n')}\n`;
};

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'hapi-browser-'));
  procs = new Processes(tmp);
  try {
    await setUp();
  } catch (e) {
    failed = true;
    throw e;
  }
});

async function setUp() {
  needTools();

  const [idpPort, hapiPort] = [await freePort(), await freePort()];
  idp = { url: `http://127.0.0.1:${idpPort}` };
  hapi = { url: `http://127.0.0.1:${hapiPort}` };

  idp.proc = procs.start('idp', process.execPath, [join(oidcDir, 'idp.mjs')], {
    IDP_PORT: String(idpPort),
    IDP_HOST: '127.0.0.1',
    HAPI_AUDIENCE: AUDIENCE,
    HAPI_REDIRECT_URI: `${hapi.url}/auth/callback`,
    IDP_SCOPE: SCOPE,
    IDP_KEY_FILE: join(tmp, 'idp-key.json'),
    IDP_EXIT_ON_STDIN_EOF: '1',
  });
  await procs.waitFor('the OpenID provider', idp.proc, async () => (await fetch(`${idp.url}/.well-known/openid-configuration`)).ok);

  const config = join(tmp, 'hapi.toml');
  writeFileSync(
    config,
    `data_dir = "${join(tmp, 'data')}"

[about]
id = "e2e"
title = "Browser login test server"
contact = "test@example.org"

[auth]
mode = "oidc"
public_url = "${hapi.url}"

[auth.oidc]
issuer = "${idp.url}"
audience = ["${AUDIENCE}"]
scope = "${SCOPE}"
client_id = "hapi-web"
client_secret_file = "${join(tmp, 'client-secret')}"

[[dataset]]
id = "${DATASET}"
title = "A small magnetometer"
info = '''{"parameters":[
  {"name":"Time","type":"isotime","units":"UTC","fill":null,"length":24},
  {"name":"Bx","type":"double","units":"nT","fill":"-1e31"},
  {"name":"By","type":"double","units":"nT","fill":"-1e31"}],
  "cadence":"PT1M"}'''
`,
  );
  writeFileSync(join(tmp, 'client-secret'), 'hapi-web-secret\n', { mode: 0o600 });
  writeFileSync(join(tmp, 'records.csv'), csv());
  await procs.run('ingest', serverBin, ['ingest', '--config', config, '--dataset', DATASET, join(tmp, 'records.csv')]);

  hapi.proc = procs.start('hapi', serverBin, ['serve', '--config', config, '--listen', `127.0.0.1:${hapiPort}`], {
    RUST_LOG: 'info',
    NO_COLOR: '1',
  });
  await procs.waitFor('the HAPI server', hapi.proc, async () => (await fetch(`${hapi.url}/hapi/capabilities`)).status === 401);

  browserContext = await launch(tmp);
}

after(async () => {
  await browserContext?.close().catch(() => {});
  await procs?.stopAll().catch(() => {});
  if (!tmp) return;
  if (failed || process.env.HAPI_E2E_KEEP) {
    console.log(`# kept ${tmp} (logs, configuration, landing-after-login.png)`);
  } else {
    rmSync(tmp, { recursive: true, force: true });
  }
});

/** The page text as JSON (Chromium shows a JSON response as text). */
async function pageJson(page) {
  return JSON.parse(await page.locator('body').innerText());
}

async function onProviderLogin(page) {
  await page.waitForURL((u) => u.href.startsWith(`${idp.url}/interaction/`));
  await page.locator('input[name="login"]').waitFor();
}

test('log in through the OpenID provider, browse, log out', { timeout: 120000 }, async () => {
  try {
    const page = await browserContext.newPage();

    // No session: /hapi sends the browser to /auth/login, and that to the provider's login form.
    const hops = [];
    page.on('request', (r) => r.isNavigationRequest() && hops.push(r.url()));
    await page.goto(`${hapi.url}/hapi`);
    await onProviderLogin(page);
    assert.ok(hops.some((u) => u.startsWith(`${hapi.url}/auth/login?return_to=`)), hops.join('\n'));
    const authorize = new URL(hops.find((u) => u.startsWith(`${idp.url}/auth?`)));
    assert.equal(authorize.searchParams.get('client_id'), 'hapi-web');
    assert.equal(authorize.searchParams.get('redirect_uri'), `${hapi.url}/auth/callback`);
    assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(await page.title(), 'Sign-in');

    // devInteractions takes any login and password; then the consent page.
    await page.locator('input[name="login"]').fill(USER);
    await page.locator('input[name="password"]').fill('any password');
    await page.locator('button[type="submit"]').click();
    await page.getByRole('button', { name: 'Continue' }).click();

    // Back on the landing page, logged in.
    await page.waitForURL(`${hapi.url}/hapi`);
    await page.getByText('Logged in as').waitFor();
    assert.match(await page.locator('body').innerText(), new RegExp(`Logged in as ${USER}\\s+Log out`));
    assert.ok(hops.some((u) => u.startsWith(`${hapi.url}/auth/callback?code=`)), hops.join('\n'));
    const cookies = await browserContext.cookies(hapi.url);
    const session = cookies.find((c) => c.name === 'hapi_session');
    assert.ok(session, JSON.stringify(cookies));
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Lax');
    assert.ok(!cookies.some((c) => c.name === 'hapi_login'), 'the pending-login cookie is gone');
    await page.screenshot({ path: join(tmp, 'landing-after-login.png'), fullPage: true });

    // The dataset's page and its links work with the session cookie.
    await page.locator('#catalog li', { hasText: DATASET }).getByRole('link').first().click();
    await page.waitForURL((u) => u.pathname === '/portal/dataset');
    await page.getByRole('link', { name: '/info', exact: true }).click();
    await page.waitForURL((u) => u.pathname === '/hapi/info');
    const info = await pageJson(page);
    assert.equal(info.status.code, 1200);
    assert.deepEqual(info.parameters.map((p) => p.name), ['Time', 'Bx', 'By']);
    assert.equal(info.startDate, '2024-01-01T00:00:00.000Z');

    // The download links save csv and json of the default range (a live dataset's last day).
    await page.goBack();
    const saved = async (id) => {
      const download = page.waitForEvent('download');
      await page.locator(id).click();
      const d = await download;
      assert.match(d.url(), /\/hapi\/data\?dataset=e2e(\/|%2F)magnetometer&start=/);
      return readFileSync(await d.path(), 'utf8');
    };
    const records = (await saved('#dl-csv')).trim().split('\n');
    assert.ok(records.length >= 10, records.join('\n'));
    for (const line of records) {
      const [time, bx, by] = line.split(',');
      const i = (Date.parse(time) - Date.UTC(2024, 0, 1)) / 60000;
      assert.ok(Number.isInteger(i) && i >= 0 && i < 120, line);
      assert.deepEqual([Number(bx), Number(by)], [i * 0.5, 100 - i], line);
    }
    const data = JSON.parse(await saved('#dl-json'));
    assert.equal(data.status.code, 1200);
    assert.equal(data.data.length, records.length);
    assert.deepEqual(data.data[0].slice(1), records[0].split(',').slice(1).map(Number));

    // Logout ends the server's session (and, should the server send the browser to the
    // provider's end_session_endpoint, the provider's confirmation is accepted).
    await page.goto(`${hapi.url}/auth/logout`);
    await page.getByRole('button', { name: 'Log out' }).click();
    await Promise.race([
      page.waitForURL((u) => u.href.startsWith(`${idp.url}/`)),
      page.getByText('Your session has ended').waitFor(),
    ]);
    if (page.url().startsWith(`${idp.url}/`)) {
      await page.getByRole('button', { name: 'Yes, sign me out' }).click();
      // The provider returns to /hapi, which (no session any more) goes on to a login:
      // the navigation settles on the provider's login form, or on /hapi if it does not.
      await page.waitForURL(
        (u) => u.href.startsWith(`${hapi.url}/`) || u.href.startsWith(`${idp.url}/interaction/`),
      );
    } else {
      await page.getByText('Your session has ended').waitFor();
    }
    assert.ok(!(await browserContext.cookies(hapi.url)).some((c) => c.name === 'hapi_session'));
    // Without a session the server sends the browser to the login again.
    const r = await browserContext.request.get(`${hapi.url}/hapi`, {
      headers: { accept: 'text/html' },
      maxRedirects: 0,
    });
    assert.equal(r.status(), 302);
    assert.equal(r.headers().location, '/auth/login?return_to=/hapi');

    // And in the browser /hapi leads back to the provider. If the provider still has its
    // own session for the user, it logs them straight back in: see the next test.
    hops.length = 0;
    await page.goto(`${hapi.url}/hapi`);
    await page.waitForURL((u) => u.href.startsWith(`${idp.url}/interaction/`) || u.href === `${hapi.url}/hapi`);
    assert.ok(hops.some((u) => u.startsWith(`${idp.url}/auth?`)), hops.join('\n'));
    afterLogout = page.url().startsWith(`${idp.url}/interaction/`) ? 'provider login form' : 'logged in again';
    if (afterLogout === 'provider login form') await onProviderLogin(page);
  } catch (e) {
    failed = true;
    console.log(`# provider log:\n${log('idp')}\n# server log:\n${log('hapi')}`);
    throw e;
  }
});

// /auth/logout ends the server's cookie session and, through the provider's
// end_session_endpoint (OpenID Connect RP-Initiated Logout), its single-sign-on
// session too: the next visit asks for the password again.
test(
  'logout also ends the provider session',
  () => {
    assert.equal(afterLogout, 'provider login form', `after /auth/logout, /hapi: ${afterLogout}`);
  },
);
