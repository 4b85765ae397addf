// The Lattice page's placements: which nodes each type's actors live on,
// the moves of its last change as they happen (per node actors move from:
// moved, left, bytes), and a form to give a type other nodes — the same
// change as `pigeon placement TYPE --nodes a,b,c`. Read from
// GET /api/v1/types/{name}/placement every second while the page is open.

import { html, useEffect, useState } from './vendor/htm-preact-standalone.mjs';
import { api } from './api.js';
import { num } from './format.js';

const POLL_MS = 1000;

/** "2.4 KiB" and the like. */
function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function Moves({ info }) {
  if (!info.previous) return html`<span class="muted">–</span>`;
  return html`<div data-test="moves">
    ${info.moves.map(
      (m) => html`<div data-test=${`move-${m.from}`}>
        from <b>${m.from}</b>: ${m.done ? html`<span class="badge ok">done</span>` : html`<span class="badge warn">moving</span>`}
        ${num(m.moved)} moved, ${num(m.remaining)} left, ${bytes(m.bytes)}
        ${m.error && html`<div class="error">${m.error}</div>`}
      </div>`,
    )}
  </div>`;
}

function Row({ ctx, info, onChanged }) {
  const [nodes, setNodes] = useState(info.nodes.join(','));
  const [outcome, setOutcome] = useState(null);
  const change = async (event) => {
    event.preventDefault();
    const wanted = nodes.split(',').map((n) => n.trim()).filter((n) => n);
    try {
      const body = { nodes: wanted };
      const changed = await ctx.act(() => api(`/types/${encodeURIComponent(info.type)}/placement`, { method: 'PUT', body }));
      setOutcome({ ok: true, text: `now on ${changed.nodes.join(', ')} (epoch ${changed.epoch}); its actors are moving` });
      onChanged();
    } catch (e) {
      setOutcome({ ok: false, text: e.message });
    }
  };
  return html`<tr data-test=${`placement-${info.type}`}>
    <td><b>${info.type}</b></td>
    <td data-test="placement-nodes">${info.nodes.join(', ')} <span class="muted">(epoch ${info.epoch})</span></td>
    <td><${Moves} info=${info} /></td>
    <td>
      <form onSubmit=${change} class="inline">
        <input value=${nodes} onInput=${(e) => setNodes(e.target.value)} data-test="placement-input" aria-label=${`nodes of ${info.type}`} />
        <button type="submit" data-test="placement-change">Move</button>
      </form>
      ${outcome && html`<div class=${outcome.ok ? 'ok-text' : 'error'} data-test="placement-outcome">${outcome.text}</div>`}
    </td>
  </tr>`;
}

/** Every type's placement, refreshed while shown. */
export function Placements({ ctx }) {
  const [infos, setInfos] = useState([]);
  const [error, setError] = useState(null);
  const [round, setRound] = useState(0);
  useEffect(() => {
    let live = true;
    const load = async () => {
      try {
        const types = await api('/types');
        const all = await Promise.all(types.map((t) => api(`/types/${encodeURIComponent(t.name)}/placement`)));
        if (live) {
          setInfos(all.filter((p) => p.nodes.length > 0));
          setError(null);
        }
      } catch (e) {
        if (live) setError(e.message);
      }
    };
    load();
    const timer = setInterval(load, POLL_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [round]);
  return html`<section data-test="placements">
    <h2>Placements</h2>
    <p class="muted">Give a type other nodes and its actors whose owner changes move there, with their state and mailboxes,
      while they keep taking messages (<code>pigeon placement TYPE --nodes a,b,c</code>; <code>pigeon drain NODE</code> empties a node).</p>
    ${error && html`<p class="error">${error}</p>`}
    <table data-test="placement-table">
      <thead><tr><th>type</th><th>nodes</th><th>moves</th><th>change</th></tr></thead>
      <tbody>${infos.map((info) => html`<${Row} key=${info.type} ctx=${ctx} info=${info} onChanged=${() => setRound(round + 1)} />`)}</tbody>
    </table>
  </section>`;
}
