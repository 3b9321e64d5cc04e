// The portal's plots, drawn on a canvas: one panel per parameter, a line per vector
// component (NaN, i.e. fill, breaks the line), or a spectrogram for a parameter with
// bins. Each redraw reduces the records to what a pixel column can show (first, min,
// max and last value of the column for lines; the column's last record for
// spectrograms), so the cost of a frame is one pass over the records in view and a
// path of at most four points per column: a million points stay smooth.

import { formatTime } from './hapi-binary.js';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#7f7f7f'];
const PAD = { left: 64, right: 12, top: 10, bottom: 26 };

/** The index of the first time >= t (times ascending). */
export function lowerBound(times, n, t) {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (times[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Round tick values between a and b, about `want` of them. */
function ticks(a, b, want) {
  const span = b - a;
  if (!(span > 0)) return [a];
  const raw = span / want;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(a / step) * step; v <= b + step * 1e-9; v += step) out.push(v);
  return out;
}

const TIME_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5,
  18e5, 36e5, 72e5, 108e5, 216e5, 432e5, 864e5, 1728e5, 6048e5, 2592e6, 7776e6, 31536e6];

function timeTicks(a, b, want) {
  const step = TIME_STEPS.find((s) => (b - a) / s <= want) ?? TIME_STEPS[TIME_STEPS.length - 1];
  const out = [];
  for (let t = Math.ceil(a / step) * step; t <= b; t += step) out.push(t);
  return { out, step };
}

function timeLabel(t, step) {
  const iso = formatTime(t);
  if (step >= 864e5) return iso.slice(0, 10);
  if (step >= 6e4) return iso.slice(11, 16);
  if (step >= 1e3) return iso.slice(11, 19);
  return iso.slice(17, 23);
}

function numLabel(v) {
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(1) : String(Number(v.toPrecision(6)));
}

/** A colour from a value in [0, 1]: dark blue through green to yellow. */
function palette(x) {
  const stops = [[40, 20, 90], [30, 90, 160], [30, 160, 130], [140, 200, 60], [250, 230, 40]];
  const f = Math.min(Math.max(x, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(f), stops.length - 2);
  const w = f - i;
  return stops[i].map((c, k) => Math.round(c + (stops[i + 1][k] - c) * w));
}

/** One parameter's panel: a canvas with its axes, labels and legend. */
export class Panel {
  /** `p` is the parameter's info; `column` its values (`n * count`), `count` per record. */
  constructor(container, p, count, onZoom) {
    this.p = p;
    this.count = count;
    this.bins = p.bins && p.bins[0] && Array.isArray(p.bins[0].centers) && p.bins[0].centers.length === count
      ? p.bins[0]
      : null;
    this.el = document.createElement('figure');
    this.el.className = 'panel';
    this.canvas = document.createElement('canvas');
    const units = Array.isArray(p.units) ? p.units.join(', ') : (p.units ?? '');
    const what = this.bins ? 'spectrogram' : 'time series';
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', `${what} of ${p.name}${units ? ` in ${units}` : ''}`);
    const caption = document.createElement('figcaption');
    caption.className = 'legend';
    const title = document.createElement('strong');
    title.textContent = `${p.name}${units ? ` [${units}]` : ''}`;
    caption.append(title);
    if (!this.bins) {
      const labels = Array.isArray(p.label) ? p.label : null;
      for (let j = 0; j < count; j++) {
        const item = document.createElement('span');
        const sw = document.createElement('span');
        sw.className = `swatch c${j % COLORS.length}`;
        item.append(sw, count === 1 ? (typeof p.label === 'string' ? p.label : p.name) : (labels?.[j] ?? `${p.name}[${j}]`));
        caption.append(item);
      }
    }
    this.el.append(this.canvas, caption);
    container.append(this.el);
    this.points = 0;
    this.drag = null;
    this.canvas.addEventListener('pointerdown', (e) => {
      this.canvas.setPointerCapture(e.pointerId);
      this.drag = { x0: e.offsetX, x1: e.offsetX, saved: null };
    });
    this.canvas.addEventListener('pointermove', (e) => {
      if (!this.drag) return;
      this.drag.x1 = e.offsetX;
      this.overlay();
    });
    this.canvas.addEventListener('pointerup', () => {
      const d = this.drag;
      this.drag = null;
      if (!d) return;
      this.redrawSaved(d);
      const [a, b] = [Math.min(d.x0, d.x1), Math.max(d.x0, d.x1)];
      if (b - a >= 5 && this.view) onZoom(this.timeAt(a), this.timeAt(b));
    });
  }

  timeAt(cssX) {
    const { x0, x1 } = this.view;
    const w = this.canvas.clientWidth - PAD.left - PAD.right;
    return x0 + ((Math.min(Math.max(cssX - PAD.left, 0), w)) / w) * (x1 - x0);
  }

  /** The zoom rectangle over the last frame (kept as an image, so dragging does not redraw the data). */
  overlay() {
    const d = this.drag;
    const ctx = this.canvas.getContext('2d');
    if (!d.saved) d.saved = ctx.getImageData(0, 0, this.canvas.width, this.canvas.height);
    ctx.putImageData(d.saved, 0, 0);
    const r = window.devicePixelRatio || 1;
    ctx.fillStyle = 'rgba(11, 92, 173, 0.18)';
    ctx.fillRect(Math.min(d.x0, d.x1) * r, 0, Math.abs(d.x1 - d.x0) * r, this.canvas.height);
  }

  redrawSaved(d) {
    if (d.saved) this.canvas.getContext('2d').putImageData(d.saved, 0, 0);
  }

  /** Draws the records `[0, n)` of `times`/`column` over `[x0, x1)`. Returns the points drawn. */
  draw(times, n, column, x0, x1) {
    this.view = { x0, x1 };
    const c = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const cw = c.clientWidth;
    const ch = c.clientHeight;
    c.width = Math.round(cw * ratio);
    c.height = Math.round(ch * ratio);
    const ctx = c.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, cw, ch);
    const w = cw - PAD.left - PAD.right;
    const h = ch - PAD.top - PAD.bottom;
    const i0 = lowerBound(times, n, x0);
    const i1 = lowerBound(times, n, x1);
    const xs = w / (x1 - x0);
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#57606a';
    ctx.strokeStyle = '#d0d7de';
    ctx.lineWidth = 1;
    const { out: tt, step } = timeTicks(x0, x1, Math.max(2, Math.floor(w / 90)));
    ctx.textAlign = 'center';
    for (const t of tt) {
      const x = PAD.left + (t - x0) * xs;
      ctx.beginPath();
      ctx.moveTo(x, PAD.top);
      ctx.lineTo(x, PAD.top + h);
      ctx.stroke();
      ctx.fillText(timeLabel(t, step), x, ch - 8);
    }
    ctx.strokeRect(PAD.left, PAD.top, w, h);
    this.points = this.bins
      ? this.drawSpectrogram(ctx, times, column, i0, i1, x0, xs, w, h)
      : this.drawLines(ctx, times, column, i0, i1, x0, xs, w, h);
    return this.points;
  }

  drawLines(ctx, times, column, i0, i1, x0, xs, w, h) {
    const k = this.count;
    let lo = Infinity;
    let hi = -Infinity;
    let points = 0;
    for (let r = i0; r < i1; r++) {
      for (let j = 0; j < k; j++) {
        const v = column[r * k + j];
        if (v === v) {
          points++;
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
      }
    }
    if (points === 0) {
      ctx.textAlign = 'center';
      ctx.fillText('no values in this range', PAD.left + w / 2, PAD.top + h / 2);
      return 0;
    }
    if (lo === hi) {
      lo -= 1;
      hi += 1;
    }
    const padY = (hi - lo) * 0.05;
    lo -= padY;
    hi += padY;
    const ys = h / (hi - lo);
    ctx.textAlign = 'right';
    ctx.strokeStyle = '#eef1f4';
    for (const v of ticks(lo, hi, Math.max(2, Math.floor(h / 40)))) {
      const y = PAD.top + h - (v - lo) * ys;
      ctx.beginPath();
      ctx.moveTo(PAD.left, y);
      ctx.lineTo(PAD.left + w, y);
      ctx.stroke();
      ctx.fillText(numLabel(v), PAD.left - 4, y + 4);
    }
    ctx.save();
    ctx.beginPath();
    ctx.rect(PAD.left, PAD.top, w, h);
    ctx.clip();
    ctx.lineWidth = 1.2;
    for (let j = 0; j < k; j++) {
      ctx.strokeStyle = COLORS[j % COLORS.length];
      ctx.beginPath();
      let col = -1;
      let first = 0;
      let mn = 0;
      let mx = 0;
      let last = 0;
      let open = false; // a line runs into the current column
      const flush = () => {
        const x = PAD.left + col + 0.5;
        const y = (v) => PAD.top + h - (v - lo) * ys;
        if (open) ctx.lineTo(x, y(first));
        else ctx.moveTo(x, y(first));
        ctx.lineTo(x, y(mn));
        ctx.lineTo(x, y(mx));
        ctx.lineTo(x, y(last));
        open = true;
      };
      for (let r = i0; r < i1; r++) {
        const v = column[r * k + j];
        if (v !== v) {
          // A fill value: the line stops here and starts again at the next value.
          if (col >= 0) flush();
          col = -1;
          open = false;
          continue;
        }
        const c = Math.floor((times[r] - x0) * xs);
        if (c !== col) {
          if (col >= 0) flush();
          col = c;
          first = mn = mx = last = v;
        } else {
          if (v < mn) mn = v;
          if (v > mx) mx = v;
          last = v;
        }
      }
      if (col >= 0) flush();
      ctx.stroke();
    }
    ctx.restore();
    return points;
  }

  drawSpectrogram(ctx, times, column, i0, i1, x0, xs, w, h) {
    const k = this.count;
    const cols = Math.max(1, Math.round(w));
    let lo = Infinity;
    let hi = -Infinity;
    let points = 0;
    for (let i = i0 * k; i < i1 * k; i++) {
      const v = column[i];
      if (v === v) {
        points++;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    const log = lo > 0 && hi / lo > 100;
    const f = log ? Math.log10 : (v) => v;
    const [a, b] = [f(lo), f(hi)];
    // The last record of each column, per bin; columns without a record stay empty (a gap).
    const img = new ImageData(cols, k);
    for (let r = i0; r < i1; r++) {
      const cx = Math.floor((times[r] - x0) * xs);
      if (cx < 0 || cx >= cols) continue;
      for (let j = 0; j < k; j++) {
        const v = column[r * k + j];
        const at = ((k - 1 - j) * cols + cx) * 4;
        if (v !== v) {
          img.data[at + 3] = 0;
          continue;
        }
        const [R, G, B] = palette(b > a ? (f(v) - a) / (b - a) : 0.5);
        img.data[at] = R;
        img.data[at + 1] = G;
        img.data[at + 2] = B;
        img.data[at + 3] = 255;
      }
    }
    const off = document.createElement('canvas');
    off.width = cols;
    off.height = k;
    off.getContext('2d').putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, PAD.left, PAD.top, w, h);
    const centers = this.bins.centers;
    const unit = this.bins.units ?? '';
    ctx.textAlign = 'right';
    ctx.fillText(`${numLabel(centers[k - 1])}`, PAD.left - 4, PAD.top + 10);
    ctx.fillText(`${numLabel(centers[0])}`, PAD.left - 4, PAD.top + h);
    ctx.save();
    ctx.translate(12, PAD.top + h / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = 'center';
    ctx.fillText(`${this.bins.name ?? 'bins'}${unit ? ` [${unit}]` : ''}`, 0, 0);
    ctx.restore();
    if (points > 0) {
      const legend = this.el.querySelector('.scale') ?? document.createElement('span');
      legend.className = 'scale';
      legend.textContent = `colour: ${numLabel(lo)} (dark) to ${numLabel(hi)} (light)${log ? ', log scale' : ''}`;
      this.el.querySelector('figcaption').append(legend);
    }
    return points;
  }
}
