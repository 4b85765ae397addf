// The dashboard's only door to the node: the public HTTP API (/api/v1),
// the same one the CLI uses, and its live feed of server-sent events.

const TOKEN_KEY = 'pigeon.token';

/** The API token, kept in this browser once given. */
export const token = {
  get: () => localStorage.getItem(TOKEN_KEY) || '',
  set: (value) => {
    const t = (value || '').trim();
    if (t) localStorage.setItem(TOKEN_KEY, t);
    else localStorage.removeItem(TOKEN_KEY);
  },
};

/** An error of the API: its HTTP status, stable code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(json) {
  const h = {};
  if (json) h['content-type'] = 'application/json';
  const t = token.get();
  if (t) h.authorization = `Bearer ${t}`;
  return h;
}

/** Calls `path` under /api/v1; resolves to the JSON answer, or throws an ApiError. */
export async function api(path, { method = 'GET', body } = {}) {
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers: headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'unreachable', `the node does not answer (${e.message}): is it running?`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const err = data && data.error;
    throw new ApiError(response.status, err ? err.code : `http_${response.status}`, err ? err.message : text || response.statusText);
  }
  return data;
}

/** Every page of a paged list endpoint (`after` = last item's `key(item)`), up to `max` items. */
export async function pages(path, key, max = 50000) {
  const all = [];
  let after = '';
  for (;;) {
    const sep = path.includes('?') ? '&' : '?';
    const page = await api(`${path}${sep}limit=1000${after ? `&after=${encodeURIComponent(after)}` : ''}`);
    all.push(...page);
    if (page.length < 1000 || all.length >= max) return all;
    after = String(key(page[page.length - 1]));
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Follows /api/v1/events: calls `onTick` with each `tick`, and `onStatus`
 * with 'live', 'reconnecting' or 'unauthorized'. Reconnects on its own
 * (after a node restart too), backing off up to 5 s. Uses fetch rather than
 * EventSource so that the token can travel in the Authorization header.
 */
export function liveFeed({ onTick, onStatus }) {
  let stopped = false;
  let controller = null;
  let delay = 250;
  (async () => {
    while (!stopped) {
      controller = new AbortController();
      try {
        const response = await fetch('/api/v1/events', { headers: headers(false), signal: controller.signal });
        if (!response.ok) throw new ApiError(response.status, 'events', response.statusText);
        onStatus('live');
        delay = 250;
        await readEvents(response.body, (event, data) => {
          if (event === 'tick') onTick(JSON.parse(data));
        });
        if (!stopped) onStatus('reconnecting');
      } catch (e) {
        if (stopped) return;
        onStatus(e.status === 401 ? 'unauthorized' : 'reconnecting');
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 5000);
    }
  })();
  return {
    stop() {
      stopped = true;
      if (controller) controller.abort();
    },
    /** Drops the connection and opens a new one (after the token changed). */
    reconnect() {
      delay = 0;
      if (controller) controller.abort();
    },
  };
}

/** Reads a text/event-stream body, calling `dispatch(event, data)` per event. */
async function readEvents(body, dispatch) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length) dispatch(event, data.join('\n'));
    }
  }
}
