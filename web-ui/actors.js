// Actors: every actor the node knows, with its mailbox by priority, the turn
// it runs now and its counters. Sorting and filtering run on the rows in
// memory; only one page of rows is drawn, so thousands stay smooth.

import { html, useMemo, useState } from './vendor/htm-preact-standalone.mjs';
import { ago, byPriority, clip, num, total, typeOf } from './format.js';

const PAGE = 100;

const COLUMNS = [
  { key: 'address', label: 'actor', value: (a) => a.address },
  { key: 'type', label: 'type', value: (a) => typeOf(a.address) },
  { key: 'pending', label: 'queued', value: (a) => total(a.depths), num: true },
  { key: 'in_flight', label: 'in flight', value: (a) => (a.in_flight ? 1 : 0), num: true },
  { key: 'processed', label: 'processed', value: (a) => a.processed, num: true },
  { key: 'failed', label: 'failed', value: (a) => a.failed, num: true },
  { key: 'dead_lettered', label: 'dead', value: (a) => a.dead_lettered, num: true },
  { key: 'last_activity_ms', label: 'last activity', value: (a) => a.last_activity_ms, num: true },
];

export function ActorsPage({ ctx, initialFilter }) {
  const { model } = ctx;
  const [filter, setFilter] = useState(initialFilter || '');
  const [sort, setSort] = useState({ key: 'last_activity_ms', desc: true });
  const [page, setPage] = useState(0);

  const rows = useMemo(() => {
    const needle = filter.trim().toLowerCase();
    const column = COLUMNS.find((c) => c.key === sort.key) || COLUMNS[0];
    const all = [...model.actors.values()].filter(
      (a) => !needle || a.address.toLowerCase().includes(needle) || (a.last_error || '').toLowerCase().includes(needle),
    );
    all.sort((x, y) => {
      const a = column.value(x);
      const b = column.value(y);
      const order = a < b ? -1 : a > b ? 1 : x.address < y.address ? -1 : 1;
      return sort.desc ? -order : order;
    });
    return all;
  }, [model.actors, filter, sort]);

  const pages = Math.max(1, Math.ceil(rows.length / PAGE));
  const current = Math.min(page, pages - 1);
  const shown = rows.slice(current * PAGE, (current + 1) * PAGE);
  const sortBy = (key) => setSort((s) => ({ key, desc: s.key === key ? !s.desc : key !== 'address' && key !== 'type' }));
  const now = Date.now();

  return html`<section>
    <h1>Actors <small class="muted">${num(rows.length)} of ${num(model.actors.size)}</small></h1>
    <div class="toolbar">
      <input type="search" placeholder="filter by address or error…" value=${filter} data-test="actor-filter"
        onInput=${(e) => { setFilter(e.target.value); setPage(0); }} />
      <span class="spacer"></span>
      <button class="small" disabled=${current === 0} onClick=${() => setPage(current - 1)}>‹ prev</button>
      <span class="muted">page ${current + 1} of ${pages}</span>
      <button class="small" disabled=${current >= pages - 1} onClick=${() => setPage(current + 1)}>next ›</button>
    </div>
    <table class="sortable" data-test="actors">
      <thead><tr>
        ${COLUMNS.map(
          (c) => html`<th class=${c.num ? 'num' : ''} onClick=${() => sortBy(c.key)} data-test=${`sort-${c.key}`}>
            ${c.label}${sort.key === c.key ? (sort.desc ? ' ▾' : ' ▴') : ''}</th>`,
        )}
        <th>last error</th>
      </tr></thead>
      <tbody>
        ${shown.map(
          (a) => html`<tr data-test=${`actor-${a.address}`}>
            <td><a href=${`#/actors/${a.address}`}>${a.address}</a></td>
            <td>${typeOf(a.address)}</td>
            <td class="num" title=${byPriority(a.depths)} data-test="pending">${num(total(a.depths))}</td>
            <td class="num">${a.in_flight ? html`<span class="badge busy" title=${a.in_flight}>running</span>` : ''}</td>
            <td class="num" data-test="processed">${num(a.processed)}</td>
            <td class=${`num ${a.failed ? 'bad-text' : ''}`}>${num(a.failed)}</td>
            <td class="num">${num(a.dead_lettered)}</td>
            <td class="num muted">${ago(a.last_activity_ms, now)}</td>
            <td class="muted" title=${a.last_error || ''}>${clip(a.last_error, 50)}</td>
          </tr>`,
        )}
        ${shown.length === 0 && html`<tr><td colspan="9" class="muted">${model.actors.size ? 'No actor matches the filter.' : 'No actors yet: send a message with the form of an actor, or `pigeon send TYPE/KEY TEXT`.'}</td></tr>`}
      </tbody>
    </table>
    <p class="muted">Open any address, even one that has no row yet: <a href="#/actors/counter/demo">#/actors/TYPE/KEY</a>.</p>
  </section>`;
}
