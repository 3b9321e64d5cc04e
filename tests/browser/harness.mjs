// What the browser tests share: where the tools are, free ports, processes started
// with their output in a log file and stopped by pid, and Debian's Chromium launched
// headless through playwright-core with nothing allowed off the machine.

import { spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, '../..');
export const oidcDir = join(repo, 'tests/oidc');
const targetDir = process.env.CARGO_TARGET_DIR ? resolve(repo, process.env.CARGO_TARGET_DIR) : join(repo, 'target');
export const serverBin = process.env.HAPI_SERVER_BIN ?? join(targetDir, 'debug/hapi-server');
export const chromiumBin = process.env.CHROMIUM ?? '/usr/bin/chromium';

export function need(condition, message) {
  if (!condition) throw new Error(message);
}

/** The tools every browser test needs, or an error that says how to get them. */
export function needTools() {
  need(
    existsSync(join(oidcDir, 'node_modules/playwright-core')) && existsSync(join(oidcDir, 'node_modules/oidc-provider')),
    `${oidcDir}/node_modules is missing: run ./scripts/test.sh (it runs npm ci --prefix tests/oidc)`,
  );
  need(existsSync(chromiumBin), `${chromiumBin} is missing: apt-get install chromium (scripts/test.sh does), or set CHROMIUM`);
  need(existsSync(serverBin), `${serverBin} is missing: cargo build --bin hapi-server, or set HAPI_SERVER_BIN`);
}

export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** The processes of one test file, each with its output in `dir/<name>.log`. */
export class Processes {
  constructor(dir) {
    this.dir = dir;
    this.list = [];
  }

  start(name, cmd, args, env = {}) {
    const out = openSync(join(this.dir, `${name}.log`), 'a');
    const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', out, out] });
    proc.name = name;
    this.list.push(proc);
    return proc;
  }

  log(name) {
    try {
      return readFileSync(join(this.dir, `${name}.log`), 'utf8');
    } catch {
      return '';
    }
  }

  /** Runs a command to its end (`input` on its stdin); fails with its log unless it exits 0. */
  run(name, cmd, args, env = {}, input = '') {
    return new Promise((ok, fail) => {
      const p = this.start(name, cmd, args, env);
      p.stdin.end(input);
      p.once('error', fail);
      p.once('exit', (code) => (code === 0 ? ok() : fail(new Error(`${name} exited ${code}:\n${this.log(name)}`))));
    });
  }

  /**
   * Starts `hapi-server serve` with `config` on 127.0.0.1:`port` and waits until it
   * answers (401 for /hapi/capabilities: every config here protects the data).
   */
  async serveHapi(config, port) {
    const proc = this.start('hapi', serverBin, ['serve', '--config', config, '--listen', `127.0.0.1:${port}`], {
      RUST_LOG: 'info',
      NO_COLOR: '1',
    });
    const url = `http://127.0.0.1:${port}`;
    await this.waitFor('the HAPI server', proc, async () => (await fetch(`${url}/hapi/capabilities`)).status === 401);
    return proc;
  }

  /** Polls until `probe` answers true, or fails with the process log. */
  async waitFor(what, proc, probe, ms = 20000) {
    const end = Date.now() + ms;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`${what} exited (${proc.exitCode ?? proc.signalCode}):\n${this.log(proc.name)}`);
      }
      try {
        if (await probe()) return;
      } catch {
        // not up yet
      }
      if (Date.now() > end) throw new Error(`${what} did not start:\n${this.log(proc.name)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops every process by its pid, last first: SIGTERM, then SIGKILL after 3 s. */
  async stopAll() {
    for (const proc of this.list.reverse()) {
      if (proc.exitCode !== null || proc.signalCode !== null) continue;
      const exited = new Promise((r) => proc.once('exit', r));
      process.kill(proc.pid, 'SIGTERM');
      const timer = setTimeout(() => {
        if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, 'SIGKILL');
      }, 3000);
      await exited;
      clearTimeout(timer);
    }
  }
}

/** Headless Chromium with its profile in `dir`; requests off 127.0.0.1 are aborted. */
export async function launch(dir, viewport = { width: 1100, height: 800 }) {
  const { chromium } = createRequire(join(oidcDir, 'package.json'))('playwright-core');
  const context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
    executablePath: chromiumBin,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport,
    acceptDownloads: true,
  });
  // Nothing leaves the machine: the provider's pages link web fonts, for one.
  await context.route(
    (url) => url.hostname !== '127.0.0.1',
    (route) => route.abort(),
  );
  return context;
}
