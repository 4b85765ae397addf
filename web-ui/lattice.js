// Lattice: the nodes this one knows, live from the feed's ticks. Each
// row says whether the node is up, down (silent past its beats) or
// refused (back with a new incarnation under an old id), what it runs,
// how many messages wait in this node's outbox towards it, and how many it
// forwarded per second. A refused node can be forgotten, and so admitted
// again, after a confirmation. Below, each type's placement and its moves
// (see `placements.js`).

import { html, useState } from './vendor/htm-preact-standalone.mjs';
import { api } from './api.js';
import { num, span } from './format.js';
import { Placements } from './placements.js';

const STATE_BADGE = { up: 'ok', down: 'bad', refused: 'warn' };

export function LatticePage({ ctx }) {
  const lattice = ctx.model.tick && ctx.model.tick.lattice;
  const [pending, setPending] = useState(null);
  const [outcome, setOutcome] = useState(null);

  if (!lattice) {
    return html`<section>
      <h1>Lattice</h1>
      <p class="muted" data-test="lattice-alone">This node runs on its own. To span machines, start each node with
        <code>pigeon up --nats nats://HOST:4222 --node-id NAME</code> (see docs/lattice.md).</p>
    </section>`;
  }

  const forget = async () => {
    const id = pending;
    setPending(null);
    try {
      await ctx.act(() => api(`/nodes/${encodeURIComponent(id)}/forget`, { method: 'POST' }));
      setOutcome({ ok: true, text: `Forgot ${id}: its next heartbeat is judged anew.` });
    } catch (e) {
      setOutcome({ ok: false, text: e.message });
    }
  };

  const info = lattice.lattice;
  const up = lattice.nodes.filter((n) => n.state === 'up').length;
  return html`<section>
    <h1>Lattice <small class="muted">${info.name}</small></h1>
    <p>
      <span class=${`badge ${info.connected ? 'ok' : 'bad'}`} data-test="lattice-connection">${info.connected ? 'connected' : 'disconnected'}</span>
      <span class="muted"> this node is <b>${info.node_id}</b>; ${up} of ${lattice.nodes.length} nodes up</span>
      ${!info.connected && html` <span class="error">NATS is unreachable: this node serves its own actors, keeps what others' actors get in its outbox, and retries.</span>`}
    </p>
    ${outcome && html`<p class=${outcome.ok ? 'ok-text' : 'error'} data-test="lattice-outcome">${outcome.text}</p>`}
    ${pending && html`<div class="confirm" data-test="confirm">
      <span>Forget ${pending}? It is admitted again under whatever incarnation it comes back with: do this only once you accept that its old store is gone.</span>
      <button class="danger" onClick=${forget} data-test="confirm-yes">Forget</button>
      <button onClick=${() => setPending(null)} data-test="confirm-no">Cancel</button>
    </div>`}
    <table data-test="lattice-nodes">
      <thead><tr><th>node</th><th>state</th><th>types</th><th class="num">active actors</th><th class="num">outbox to it</th><th class="num">forwarded/s</th><th>last heard</th><th>API</th><th>version</th><th></th></tr></thead>
      <tbody>
        ${lattice.nodes.map(
          (n) => html`<tr data-test=${`node-${n.id}`}>
            <td><b>${n.id}</b>${n.this_node && html` <span class="muted">(this node)</span>`}<div class="mono muted">${n.incarnation}</div></td>
            <td><span class=${`badge ${STATE_BADGE[n.state] || ''}`} data-test="node-state" title=${n.refusal || ''}>${n.state}</span>${n.refusal && html`<div class="error">${n.refusal}</div>`}</td>
            <td>${n.types.join(', ') || html`<span class="muted">–</span>`}</td>
            <td class="num">${num(n.active_actors)}</td>
            <td class="num" data-test="node-outbox">${n.this_node ? html`<span class="muted">–</span>` : num(n.outbox_to)}</td>
            <td class="num" data-test="node-forwarded">${n.this_node ? html`<span class="muted">–</span>` : num(Math.round(n.forwarded_per_sec))}</td>
            <td class="muted">${n.this_node ? 'now' : `${span(n.silent_ms)} ago`}</td>
            <td class="mono muted">${n.api}</td>
            <td class="muted">${n.version}</td>
            <td class="actions">${n.state === 'refused' && html`<button class="small danger" onClick=${() => { setPending(n.id); setOutcome(null); }} data-test="forget">Forget</button>`}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    <${Placements} ctx=${ctx} />
  </section>`;
}
