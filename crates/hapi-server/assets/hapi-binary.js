// HAPI's binary format, times and durations for the portal's plots: a decoder of the
// `/data?format=binary` body into columns (times as float milliseconds since 1970,
// values as Float64Array with fill values turned into NaN, so lines break there).

const MS_DAY = 86400000;

/** Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
function daysFromCivil(y, m, d) {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** Milliseconds since 1970 of a HAPI time (`YYYY-MM-DD` or `YYYY-DDD`, then
 * `THH:MM:SS.fff…`, any truncation, optional `Z`); NaN if it is not one. */
export function parseTime(s) {
  const m = /^(\d{4})-(?:(\d{2})-(\d{2})|(\d{3}))(?:T(\d{2})(?::(\d{2})(?::(\d{2})(\.\d*)?)?)?)?Z?$/.exec(s.trim());
  if (!m) return NaN;
  const y = +m[1];
  const days = m[4] !== undefined ? daysFromCivil(y, 1, 1) + (+m[4] - 1) : daysFromCivil(y, +m[2], +m[3]);
  const frac = m[8] && m[8].length > 1 ? Number(m[8]) * 1000 : 0;
  return days * MS_DAY + (+(m[5] ?? 0)) * 3600000 + (+(m[6] ?? 0)) * 60000 + (+(m[7] ?? 0)) * 1000 + frac;
}

/** A time as HAPI's `YYYY-MM-DDTHH:MM:SS.sssZ` (milliseconds, rounded down). */
export function formatTime(ms) {
  return new Date(Math.floor(ms)).toISOString();
}

/** Milliseconds of an ISO 8601 duration (`P1D`, `PT1H30M`, `PT0.5S`); months count 30
 * days and years 365 (only used to plan request pieces, where less is safe). NaN if not one. */
export function parseDuration(s) {
  const m = /^P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(s ?? '');
  if (!m || s === 'P' || s.endsWith('T')) return NaN;
  const n = (i) => (m[i] ? Number(m[i]) : 0);
  return ((n(1) * 365 + n(2) * 30 + n(3)) * 24 + n(4)) * 3600000 + n(5) * 60000 + n(6) * 1000;
}

/** The number of values of a parameter in one record. */
export function count(p) {
  return (p.size ?? [1]).reduce((a, b) => a * b, 1);
}

/** Where each field of a record is, for the parameters of a response (time first, in
 * the info's order). */
export function layout(params) {
  let offset = 0;
  const fields = params.map((p) => {
    const n = count(p);
    const width = p.type === 'double' ? 8 : p.type === 'integer' ? 4 : p.length;
    const f = { name: p.name, type: p.type, offset, n, width, fill: fillOf(p) };
    offset += n * width;
    return f;
  });
  return { fields, recordSize: offset };
}

function fillOf(p) {
  if (p.fill === null || p.fill === undefined) return undefined;
  const v = Number(p.fill);
  return Number.isNaN(v) ? NaN : v;
}

/** Decodes a binary body: `{ n, times, columns }`, `columns[i]` holding `n * count`
 * values of field `i` (none for strings and isotimes other than the time). Throws if
 * the body is not a whole number of records. */
export function decode(buffer, lay) {
  const { fields, recordSize } = lay;
  if (buffer.byteLength % recordSize !== 0) {
    throw new Error(`the answer is not a whole number of records (${buffer.byteLength} bytes, records of ${recordSize})`);
  }
  const n = buffer.byteLength / recordSize;
  const view = new DataView(buffer);
  const bytes = new Uint8Array(buffer);
  const times = new Float64Array(n);
  const tw = fields[0].width;
  // The date part repeats from record to record: its days are reused while it stays
  // the same (its length is the first record's, up to the `T`).
  let dateLen = -1;
  let lastDate = '';
  let lastDays = NaN;
  for (let r = 0; r < n; r++) {
    const at = r * recordSize;
    const text = String.fromCharCode.apply(null, bytes.subarray(at, at + tw));
    if (dateLen < 0) {
      const t = text.indexOf('T');
      dateLen = t < 0 ? text.replace(/Z$/, '').length : t;
    }
    const date = text.slice(0, dateLen);
    if (date !== lastDate) {
      lastDays = parseTime(date);
      lastDate = date;
    }
    times[r] = Number.isNaN(lastDays) ? parseTime(text) : lastDays + timeOfDay(text);
  }
  const columns = fields.map((f, i) => {
    if (i === 0 || (f.type !== 'double' && f.type !== 'integer')) return null;
    const out = new Float64Array(n * f.n);
    const fill = f.fill;
    const fillIsNaN = fill !== undefined && Number.isNaN(fill);
    for (let r = 0, k = 0; r < n; r++) {
      let at = r * recordSize + f.offset;
      for (let j = 0; j < f.n; j++, k++, at += f.width) {
        const v = f.type === 'double' ? view.getFloat64(at, true) : view.getInt32(at, true);
        out[k] = v === fill || (fillIsNaN && Number.isNaN(v)) ? NaN : v;
      }
    }
    return out;
  });
  return { n, times, columns };
}

/** Milliseconds of the `THH:MM:SS.fff` part of a time. */
function timeOfDay(text) {
  const t = text.indexOf('T');
  if (t < 0) return 0;
  const d = (i) => text.charCodeAt(t + i) - 48;
  const len = text.length - (text.endsWith('Z') ? 1 : 0);
  let ms = 0;
  if (len > t + 2) ms += (d(1) * 10 + d(2)) * 3600000;
  if (len > t + 5) ms += (d(4) * 10 + d(5)) * 60000;
  if (len > t + 8) ms += (d(7) * 10 + d(8)) * 1000;
  if (len > t + 10) ms += Number(`0${text.slice(t + 9, len)}`) * 1000;
  return ms;
}
