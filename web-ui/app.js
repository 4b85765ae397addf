// The dashboard's shell: loads what the node knows, follows its live feed,
// keeps one model of it, and routes (by the URL's #hash) to the pages.

import { html, render, useEffect, useMemo, useRef, useState } from './vendor/htm-preact-standalone.mjs';
import { api, liveFeed, pages, token } from './api.js';
import { OverviewPage } from './overview.js';
import { ActorsPage } from './actors.js';
import { ActorPage } from './actor.js';
import { RoutingPage } from './routing.js';
import { DeadLettersPage } from './dead.js';
import { LatticePage } from './lattice.js';

/** Points kept for the charts: 5 minutes of half-second ticks. */
const HISTORY = 600;
/** Failures kept for the overview. */
const FAILURES = 100;
/** At most one full reload of the actor list this often while the feed overflows. */
const RELOAD_EVERY_MS = 3000;

const emptyModel = () => ({
  health: null,
  types: [],
  topics: [],
  actors: new Map(),
  dead: [],
  tick: null,
  history: { t: [], accepted: [], completed: [], failed: [] },
  failures: [],
  touched: new Map(),
  loadError: null,
});

/** Rates per second between two ticks, or null when the node restarted. */
function rates(prev, tick) {
  if (!prev) return null;
  const a = prev.counters;
  const b = tick.counters;
  const seconds = (tick.at_ms - prev.at_ms) / 1000;
  if (seconds <= 0 || b.accepted < a.accepted || b.completed < a.completed || b.failed < a.failed) return null;
  return {
    accepted: (b.accepted - a.accepted) / seconds,
    completed: (b.completed - a.completed) / seconds,
    failed: (b.failed - a.failed) / seconds,
  };
}

function push(series, value) {
  const out = series.length >= HISTORY ? series.slice(series.length - HISTORY + 1) : series.slice();
  out.push(value);
  return out;
}

/** The model after a tick. */
function applyTick(model, tick) {
  const r = rates(model.tick, tick);
  const history = r
    ? {
        t: push(model.history.t, tick.at_ms / 1000),
        accepted: push(model.history.accepted, r.accepted),
        completed: push(model.history.completed, r.completed),
        failed: push(model.history.failed, r.failed),
      }
    : model.history;
  let { actors, touched } = model;
  if (tick.changed.length) {
    actors = new Map(actors);
    touched = new Map(touched);
    for (const row of tick.changed) {
      actors.set(row.address, row);
      touched.set(row.address, (touched.get(row.address) || 0) + 1);
    }
  }
  const failures = tick.failures.length ? [...tick.failures.slice().reverse(), ...model.failures].slice(0, FAILURES) : model.failures;
  return { ...model, tick, rates: r || model.rates, history, actors, touched, failures };
}

function currentRoute() {
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  const hash = decodeURIComponent(path);
  if (hash.startsWith('actors/')) return { page: 'actor', address: hash.slice('actors/'.length) };
  if (['actors', 'routing', 'lattice', 'dead-letters'].includes(hash)) return { page: hash, query: new URLSearchParams(query || '') };
  return { page: 'overview' };
}

function TokenDialog({ reason, onClose, dataDir }) {
  const [value, setValue] = useState(token.get());
  const save = (e) => {
    e.preventDefault();
    token.set(value);
    onClose(true);
  };
  return html`<div class="dialog-backdrop">
    <form class="dialog" onSubmit=${save} data-test="token-dialog">
      <h2>API token</h2>
      ${reason && html`<p class="error">${reason}</p>`}
      <p>Actions (send, replay, purge) need the node's API token; reads need it too when the node listens beyond loopback.
        It is in the node's data directory: <code>cat ${dataDir || '.pigeon'}/token</code>. This browser keeps it.</p>
      <input type="password" autocomplete="off" placeholder="token" value=${value} onInput=${(e) => setValue(e.target.value)} data-test="token-input" />
      <div class="row">
        <button type="submit" class="primary" data-test="token-save">Save</button>
        <button type="button" onClick=${() => { token.set(''); setValue(''); onClose(true); }}>Forget</button>
        <button type="button" onClick=${() => onClose(false)}>Close</button>
      </div>
    </form>
  </div>`;
}

function Nav({ route, model, status, onToken }) {
  const link = (page, href, label, extra) =>
    html`<a href=${href} class=${route.page === page || (page === 'actors' && route.page === 'actor') ? 'active' : ''} data-test=${`nav-${page}`}>${label}${extra}</a>`;
  const dead = model.tick ? model.tick.dead_letters : model.dead.length;
  const lattice = model.tick && model.tick.lattice;
  const notUp = lattice ? lattice.nodes.filter((n) => n.state !== 'up').length : 0;
  const latticeBadge = !lattice ? ''
    : !lattice.lattice.connected ? html` <span class="badge bad" data-test="lattice-badge">disconnected</span>`
    : notUp ? html` <span class="badge bad" data-test="lattice-badge">${notUp} down</span>` : '';
  return html`<header>
    <span class="brand">Pigeon</span>
    <nav>
      ${link('overview', '#/', 'Overview')}
      ${link('actors', '#/actors', 'Actors')}
      ${link('routing', '#/routing', 'Routing')}
      ${link('lattice', '#/lattice', 'Lattice', latticeBadge)}
      ${link('dead-letters', '#/dead-letters', 'Dead letters', dead ? html` <span class="badge bad">${dead}</span>` : '')}
    </nav>
    <span class="spacer"></span>
    <span class=${`status ${status}`} data-test="connection" title="live feed from /api/v1/events">${status === 'live' ? '● live' : status === 'unauthorized' ? '● token needed' : '● reconnecting…'}</span>
    <button class="small" onClick=${() => onToken(null)} data-test="token-button">${token.get() ? 'Token ✓' : 'Token'}</button>
  </header>`;
}

function App() {
  const [model, setModel] = useState(emptyModel);
  const [route, setRoute] = useState(currentRoute);
  const [status, setStatus] = useState('reconnecting');
  const [tokenDialog, setTokenDialog] = useState(null);
  const feed = useRef(null);
  const reloading = useRef(false);

  const lastReload = useRef(0);
  const reload = async () => {
    if (reloading.current) return;
    reloading.current = true;
    lastReload.current = Date.now();
    try {
      const [health, types, topics, actors, dead] = await Promise.all([
        api('/health'),
        api('/types'),
        api('/topics'),
        pages('/actors', (a) => a.address),
        pages('/dead-letters', (d) => d.id),
      ]);
      setModel((m) => ({ ...m, health, types, topics, dead, actors: new Map(actors.map((a) => [a.address, a])), loadError: null }));
    } catch (e) {
      setModel((m) => ({ ...m, loadError: e.message }));
      if (e.status === 401) setTokenDialog({ reason: e.message });
    } finally {
      reloading.current = false;
    }
  };

  // What a tick says must be fetched again.
  const prev = useRef(null);
  const onTick = (tick) => {
    const before = prev.current;
    prev.current = tick;
    setModel((m) => applyTick(m, tick));
    const restarted = before && tick.counters.completed < before.counters.completed;
    // Under a flood every tick has more changes than it carries: reloading
    // the whole list each time would cost more than it shows.
    const busyReload = tick.more_changed && Date.now() - lastReload.current > RELOAD_EVERY_MS;
    if (!before || restarted || busyReload || tick.types !== before.types) reload();
    else if (tick.dead_letters !== before.dead_letters) api('/dead-letters?limit=1000').then((dead) => setModel((m) => ({ ...m, dead }))).catch(() => {});
  };

  useEffect(() => {
    const onHash = () => setRoute(currentRoute());
    window.addEventListener('hashchange', onHash);
    feed.current = liveFeed({
      onTick: (tick) => onTick(tick),
      onStatus: (s) => {
        setStatus(s);
        if (s === 'unauthorized') setTokenDialog({ reason: 'The live feed needs the API token: this node listens beyond loopback.' });
        if (s === 'live') prev.current = null;
      },
    });
    return () => {
      window.removeEventListener('hashchange', onHash);
      feed.current.stop();
    };
  }, []);

  const ctx = useMemo(
    () => ({
      model,
      reload,
      /** Runs an action; a missing or wrong token opens the token dialog. */
      act: async (fn) => {
        try {
          return await fn();
        } catch (e) {
          if (e.status === 401) setTokenDialog({ reason: e.message });
          throw e;
        }
      },
    }),
    [model],
  );

  const closeToken = (changed) => {
    setTokenDialog(null);
    if (changed) {
      feed.current.reconnect();
      reload();
    }
  };

  let page;
  if (route.page === 'actors') page = html`<${ActorsPage} ctx=${ctx} initialFilter=${route.query.get('filter') || ''} />`;
  else if (route.page === 'actor') page = html`<${ActorPage} ctx=${ctx} address=${route.address} />`;
  else if (route.page === 'routing') page = html`<${RoutingPage} ctx=${ctx} />`;
  else if (route.page === 'lattice') page = html`<${LatticePage} ctx=${ctx} />`;
  else if (route.page === 'dead-letters') page = html`<${DeadLettersPage} ctx=${ctx} />`;
  else page = html`<${OverviewPage} ctx=${ctx} />`;

  return html`
    <${Nav} route=${route} model=${model} status=${status} onToken=${(reason) => setTokenDialog({ reason })} />
    <main>
      ${model.loadError && html`<p class="error banner" data-test="load-error">${model.loadError}</p>`}
      ${model.tick && model.tick.storage_problem && html`<p class="error banner" data-test="storage-problem">${model.tick.storage_problem}</p>`}
      ${page}
    </main>
    ${tokenDialog && html`<${TokenDialog} reason=${tokenDialog.reason} onClose=${closeToken} dataDir=${model.health && model.health.data_dir} />`}
  `;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
