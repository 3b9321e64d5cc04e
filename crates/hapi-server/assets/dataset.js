// A dataset page: the selection (range and parameters), the plot, the download links
// and the snippets. Data come from `/data?format=binary` with the session cookie (the
// page holds no credential), in pieces no longer than `maxRequestDuration`; a piece
// the server still refuses with 1408 is halved, and a range that would take more than
// MAX_REQUESTS requests is cut, with the server's message and the largest range that fits.
//
// The page's state is kept on `#plots` for people and tests alike: `data-state`
// (loading, ready, error), `data-records`, `data-points` (values drawn in view) and
// `data-requests`, and what the last load and frame took (`data-decode-ms`, `data-draw-ms`).

import { count, decode, formatTime, layout, parseDuration, parseTime } from './hapi-binary.js';
import { Panel, lowerBound } from './plot.js';

const MAX_REQUESTS = 24;
const form = document.getElementById('selection');
const info = JSON.parse(document.getElementById('info-json').textContent);
const cfg = form.dataset;
const plots = document.getElementById('plots');
const status = document.getElementById('plot-status');
const startInput = document.getElementById('start');
const stopInput = document.getElementById('stop');
const maxMs = parseDuration(info.maxRequestDuration);
const numeric = (p) => p.type === 'double' || p.type === 'integer';

/** What is loaded: the range, whether all of it came, the decoded records. */
let loaded = null;
let panels = [];
let view = null;
let generation = 0;
const initial = { start: startInput.value, stop: stopInput.value };

function say(text, error = false) {
  status.textContent = text;
  status.classList.toggle('error', error);
}

function selectedNames() {
  return [...form.querySelectorAll('input[name="p"]:checked')].map((c) => c.value);
}

/** The parameters of a request, time first, in the info's order (HAPI's order). */
function requested(names) {
  const want = new Set(names);
  return info.parameters.filter((p, i) => i === 0 || want.has(p.name));
}

function dataUrl(start, stop, names, format, absolute = false) {
  const q = new URLSearchParams({ dataset: cfg.dataset, start, stop });
  const all = names.length === info.parameters.length - 1;
  if (!all) q.set('parameters', names.join(','));
  q.set('format', format);
  // URLSearchParams writes a space as '+', which HAPI's query does not decode.
  const query = q.toString().replace(/\+/g, '%20').replace(/%2C/g, ',').replace(/%3A/g, ':');
  return `${absolute ? cfg.server : cfg.hapi}/data?${query}`;
}

/** Reads the range inputs; marks a bad one. */
function readRange() {
  const a = parseTime(startInput.value);
  const b = parseTime(stopInput.value);
  startInput.setAttribute('aria-invalid', String(Number.isNaN(a)));
  stopInput.setAttribute('aria-invalid', String(Number.isNaN(b) || !(b > a)));
  if (Number.isNaN(a) || Number.isNaN(b)) throw new Error('Give the times as 2024-01-01T00:00:00Z (or a shorter form: 2024-01-01).');
  if (!(b > a)) throw new Error('The stop time must be after the start time.');
  return [a, b];
}

async function fetchPiece(a, b, params, names, timed) {
  const r = await fetch(dataUrl(formatTime(a), formatTime(b), names, 'binary'), { credentials: 'same-origin' });
  if (r.status === 204) return { n: 0, times: new Float64Array(0), columns: params.map(() => null) };
  const type = r.headers.get('content-type') ?? '';
  if (!r.ok || type.includes('json')) {
    let body = null;
    try {
      body = await r.json();
    } catch {
      // not HAPI's JSON
    }
    const code = body?.status?.code;
    const e = new Error(body?.status ? `${code} ${body.status.message}` : `the server answered ${r.status}`);
    e.code = code;
    throw e;
  }
  const body = await r.arrayBuffer();
  const t0 = performance.now();
  const part = decode(body, layout(params));
  timed(performance.now() - t0);
  return part;
}

function join(parts, params) {
  const n = parts.reduce((s, p) => s + p.n, 0);
  const times = new Float64Array(n);
  const columns = params.map((p, i) => (parts.some((x) => x.columns[i]) ? new Float64Array(n * count(p)) : null));
  let at = 0;
  for (const part of parts) {
    times.set(part.times, at);
    params.forEach((p, i) => {
      if (columns[i] && part.columns[i]) columns[i].set(part.columns[i], at * count(p));
    });
    at += part.n;
  }
  return { n, times, columns };
}

/** Loads [a, b) for `names`: pieces by maxRequestDuration, halved on 1408. */
async function load(a, b, names) {
  const gen = ++generation;
  const params = requested(names);
  plots.dataset.state = 'loading';
  say('Loading…');
  const queue = [];
  const step = Number.isFinite(maxMs) && maxMs > 0 ? maxMs : b - a;
  for (let t = a; t < b; t += step) queue.push([t, Math.min(t + step, b)]);
  const parts = [];
  let requests = 0;
  let reached = a;
  let refused = null;
  let decodeMs = 0;
  while (queue.length) {
    if (requests >= MAX_REQUESTS) break;
    const [x, y] = queue.shift();
    requests++;
    try {
      const part = await fetchPiece(x, y, params, names, (ms) => (decodeMs += ms));
      if (gen !== generation) return;
      parts.push(part);
      reached = y;
    } catch (e) {
      if (gen !== generation) return;
      if (e.code === 1408 && y - x > 2) {
        const mid = x + Math.floor((y - x) / 2);
        queue.unshift([x, mid], [mid, y]);
        refused = e.message;
        continue;
      }
      throw e;
    }
  }
  const data = join(parts, params);
  plots.dataset.decodeMs = decodeMs.toFixed(1);
  loaded = { a, b: reached, complete: reached >= b, names: names.join(','), params, data };
  plots.dataset.requests = String(requests);
  if (reached < b) {
    const fits = reached - a;
    say(
      `${refused ?? '1408 Bad request - too much time or data requested'}. Plotted ${formatTime(a)} to ${formatTime(reached)}: ` +
        `the largest range that fits in ${MAX_REQUESTS} requests is about ${human(fits)}. Zoom in, or download the whole range with the hapi command below.`,
      true,
    );
  } else {
    say(`${data.n.toLocaleString('en')} records in ${requests} request${requests === 1 ? '' : 's'}.`);
  }
  return loaded;
}

function human(ms) {
  if (ms >= 864e5) return `${(ms / 864e5).toPrecision(3)} days`;
  if (ms >= 36e5) return `${(ms / 36e5).toPrecision(3)} hours`;
  if (ms >= 6e4) return `${(ms / 6e4).toPrecision(3)} minutes`;
  return `${(ms / 1e3).toPrecision(3)} s`;
}

function build(names) {
  plots.replaceChildren();
  panels = [];
  loaded.params.forEach((p, i) => {
    if (i === 0) return;
    if (!numeric(p)) {
      const note = document.createElement('p');
      note.textContent = `${p.name} (${p.type}) is not plotted.`;
      plots.append(note);
      return;
    }
    panels.push({ panel: new Panel(plots, p, count(p), zoomTo), index: i });
  });
  if (names.length === 0) say('Pick at least one parameter to plot.');
}

function draw() {
  if (!loaded || !view) return;
  const { times, n, columns } = loaded.data;
  const t0 = performance.now();
  let points = 0;
  for (const { panel, index } of panels) points += panel.draw(times, n, columns[index], view[0], view[1]);
  const i0 = lowerBound(times, n, view[0]);
  const i1 = lowerBound(times, n, view[1]);
  plots.dataset.records = String(i1 - i0);
  plots.dataset.points = String(points);
  plots.dataset.view = `${formatTime(view[0])}/${formatTime(view[1])}`;
  plots.dataset.drawMs = (performance.now() - t0).toFixed(1);
  plots.dataset.state = 'ready';
  // When the page first became interactive with its plot (ms since navigation).
  plots.dataset.readyAt ??= performance.now().toFixed(0);
}

/** Shows [a, b): fetched again unless a complete load of the same parameters holds it. */
async function show(a, b) {
  const names = selectedNames();
  startInput.value = formatTime(a);
  stopInput.value = formatTime(b);
  update();
  try {
    const covered = loaded && loaded.complete && loaded.names === names.join(',') && a >= loaded.a && b <= loaded.b;
    if (!covered) {
      if (!(await load(a, b, names))) return;
      build(names);
    }
    view = [a, b];
    draw();
    if (covered) say(`${Number(plots.dataset.records).toLocaleString('en')} records in view (already loaded).`);
  } catch (e) {
    plots.dataset.state = 'error';
    say(`The data could not be loaded: ${e.message}`, true);
  }
}

function zoomTo(a, b) {
  show(a, b);
}

function shift(fraction) {
  const [a, b] = readRange();
  const d = (b - a) * fraction;
  show(a + d, b + d);
}

document.getElementById('pan-left').addEventListener('click', () => shift(-0.5));
document.getElementById('pan-right').addEventListener('click', () => shift(0.5));
document.getElementById('zoom-out').addEventListener('click', () => {
  const [a, b] = readRange();
  const d = (b - a) / 2;
  show(a - d, b + d);
});
document.getElementById('reset').addEventListener('click', () => {
  startInput.value = initial.start;
  stopInput.value = initial.stop;
  submit();
});
form.addEventListener('submit', (e) => {
  e.preventDefault();
  submit();
});
form.addEventListener('change', update);
window.addEventListener('resize', () => requestAnimationFrame(draw));

function submit() {
  try {
    const [a, b] = readRange();
    loaded = null;
    show(a, b);
  } catch (e) {
    say(e.message, true);
  }
}

// --- downloads and snippets, always for the current selection ---

/** A word for a POSIX shell, single-quoted. */
const sh = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
/** A Python string literal (JSON's string syntax is one). */
const py = (s) => JSON.stringify(s);

function snippets(start, stop, names) {
  const server = cfg.server;
  const all = names.length === info.parameters.length - 1;
  const token = cfg.tokenUrl !== '';
  const csvUrl = dataUrl(start, stop, names, 'csv', true);
  const creds =
    "export HAPI_CLIENT_ID='your-client-id'\n" +
    '# typed, not shown and not on the command line (nor in the shell history):\n' +
    'read -rs HAPI_CLIENT_SECRET && export HAPI_CLIENT_SECRET\n';
  const out = [];
  out.push({
    title: 'curl',
    text: token
      ? `curl -sSfO ${sh(`${cfg.downloads}/get_hapi_access_token.sh`)} && chmod +x get_hapi_access_token.sh\n${creds}` +
        `ACCESS_TOKEN=$(./get_hapi_access_token.sh -s)\n` +
        `curl -sSf -H "Authorization: Bearer $ACCESS_TOKEN" ${sh(csvUrl)} -o data.csv\n`
      : `curl -sSf ${sh(csvUrl)} -o data.csv\n`,
  });
  const params = all ? '' : `, parameters=${py(names.join(','))}`;
  const client = token
    ? `client = SWE_HAPI(os.environ["HAPI_CLIENT_ID"], os.environ["HAPI_CLIENT_SECRET"], server=${py(server)})`
    : `client = SWE_HAPI(server=${py(server)})`;
  out.push({
    title: 'Python (the SWE_HAPI class)',
    text:
      `# curl -sSfO ${cfg.downloads}/swe_hapi.py   (needs numpy; pandas for output="pandas")\n` +
      `import os\nfrom swe_hapi import SWE_HAPI\n${client}\n` +
      `data = client.get_hapi_data(${py(cfg.dataset)}, ${py(start)}, ${py(stop)}${params})\n`,
  });
  if (token) {
    out.push({
      title: 'hapiclient, with the token hook',
      text:
        `import os\nfrom hapiclient import hapi\nfrom swe_hapi import SWE_HAPI\n` +
        `SWE_HAPI(os.environ["HAPI_CLIENT_ID"], os.environ["HAPI_CLIENT_SECRET"], server=${py(server)}).hook_hapiclient()\n` +
        `data, meta = hapi(${py(server)}, ${py(cfg.dataset)}, ${py(all ? '' : names.join(','))}, ${py(start)}, ${py(stop)})\n`,
    });
  } else {
    out.push({
      title: 'hapiclient',
      text:
        `from hapiclient import hapi\n` +
        `data, meta = hapi(${py(server)}, ${py(cfg.dataset)}, ${py(all ? '' : names.join(','))}, ${py(start)}, ${py(stop)})\n`,
    });
  }
  out.push({
    title: 'The hapi command (any range, in pieces; cargo install --path crates/hapi-cli)',
    text:
      `export HAPI_SERVER=${sh(server)}\n${token ? creds : ''}` +
      `hapi data ${sh(cfg.dataset)} --start ${start} --stop ${stop}${all ? '' : ` --parameters ${sh(names.join(','))}`} --format csv -o data.csv\n`,
  });
  return out;
}

const snippetBox = document.getElementById('snippets');

function update() {
  const names = selectedNames();
  const start = startInput.value.trim();
  const stop = stopInput.value.trim();
  for (const f of ['csv', 'binary', 'json']) {
    const a = document.getElementById(`dl-${f}`);
    a.href = dataUrl(start, stop, names, f);
    a.setAttribute('download', `${cfg.dataset.replace(/[^\w.-]+/g, '_')}.${f === 'binary' ? 'bin' : f}`);
  }
  snippetBox.replaceChildren();
  snippets(start, stop, names).forEach((s, i) => {
    const box = document.createElement('div');
    box.className = 'snippet';
    const h = document.createElement('h3');
    h.textContent = s.title;
    const pre = document.createElement('pre');
    const code = document.createElement('code');
    code.id = `snippet-${i}`;
    code.textContent = s.text;
    pre.append(code);
    const copy = document.createElement('button');
    copy.type = 'button';
    copy.textContent = 'Copy';
    copy.setAttribute('aria-label', `Copy the ${s.title} snippet`);
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(s.text);
        copy.textContent = 'Copied';
      } catch {
        copy.textContent = 'Select and copy by hand';
      }
    });
    box.append(h, pre, copy);
    snippetBox.append(box);
  });
}

// The coverage follows the data: /info again every minute.
async function refreshCoverage() {
  try {
    const r = await fetch(`${cfg.hapi}/info?dataset=${encodeURIComponent(cfg.dataset)}`, { credentials: 'same-origin' });
    if (!r.ok) return;
    const i = await r.json();
    document.getElementById('cov-start').textContent = i.startDate;
    document.getElementById('cov-stop').textContent = i.stopDate;
  } catch {
    // offline for a moment: the next round tries again
  }
}
setInterval(refreshCoverage, 60000);

update();
submit();
