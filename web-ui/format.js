// How the dashboard shows values: payloads decoded (WAVE for RPC calls,
// JSON pretty-printed, UTF-8 text, hex otherwise), numbers, times.

const HEX_LIMIT = 4096;

/** A payload for display: `{kind: 'wave'|'json'|'text'|'hex'|'empty', text}`. */
export function decode(body, call) {
  if (call) return { kind: 'wave', text: call };
  if (!body || body.size === 0) return { kind: 'empty', text: '' };
  if (body.text !== undefined && body.text !== null) {
    const t = body.text.trim();
    if (t.startsWith('{') || t.startsWith('[')) {
      try {
        return { kind: 'json', text: JSON.stringify(JSON.parse(t), null, 2) };
      } catch {
        // Not JSON after all: plain text.
      }
    }
    return { kind: 'text', text: body.text };
  }
  return { kind: 'hex', text: hexDump(body.base64 || '') };
}

function hexDump(b64) {
  const bytes = atob(b64);
  const rows = [];
  const n = Math.min(bytes.length, HEX_LIMIT);
  for (let i = 0; i < n; i += 16) {
    const row = [];
    for (let j = i; j < Math.min(i + 16, n); j++) row.push(bytes.charCodeAt(j).toString(16).padStart(2, '0'));
    rows.push(`${i.toString(16).padStart(6, '0')}  ${row.join(' ')}`);
  }
  if (bytes.length > n) rows.push(`… ${bytes.length - n} more bytes`);
  return rows.join('\n');
}

/** 12345 → "12,345"; 1.234 → "1.2". */
export function num(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return '–';
  if (!Number.isInteger(n)) return n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString('en');
  return n.toLocaleString('en');
}

/** A span of milliseconds as "3 h 12 min", "42 s". */
export function span(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** How long ago a time (ms since the epoch) was: "5 s ago", or "never". */
export function ago(ms, now = Date.now()) {
  if (!ms) return 'never';
  return `${span(Math.max(0, now - ms))} ago`;
}

/** The type of an address: "counter/alice" → "counter". */
export const typeOf = (address) => address.split('/')[0];

/** A sum of the depths by priority. */
export const total = (depths) => (depths || []).reduce((a, b) => a + b, 0);

/** "p9:1 p4:3" for the non-empty priorities, highest first. */
export function byPriority(depths) {
  const parts = [];
  for (let p = (depths || []).length - 1; p >= 0; p--) if (depths[p]) parts.push(`p${p}:${depths[p]}`);
  return parts.join(' ');
}

/** The first `n` characters of a text, with an ellipsis. */
export const clip = (text, n = 80) => (text && text.length > n ? `${text.slice(0, n - 1)}…` : text || '');
