// Routing: where messages can go. Actor types with the operations they
// export for typed RPC and the links of the interfaces they import (caller
// interface → target type), and topics with their subscribers and filters.

import { html } from './vendor/htm-preact-standalone.mjs';
import { ago, num } from './format.js';

/** `acme:bank/account@0.1.0=account/main` → its interface and target. */
function parseLink(text) {
  const at = text.lastIndexOf('=');
  return { iface: text.slice(0, at), target: text.slice(at + 1) };
}

export function RoutingPage({ ctx }) {
  const { model } = ctx;
  const callers = new Map();
  for (const t of model.types) {
    for (const link of t.links) {
      const { iface, target } = parseLink(link);
      const name = target.split('/')[0];
      callers.set(name, [...(callers.get(name) || []), `${t.name} (${iface})`]);
    }
  }
  const topics = new Map();
  for (const s of model.topics) topics.set(s.topic, [...(topics.get(s.topic) || []), s]);

  return html`<section>
    <h1>Routing</h1>
    <div class="panel">
      <h2>Actor types</h2>
      <table data-test="routing-types">
        <thead><tr><th>type</th><th>exports (typed RPC)</th><th>links: imported interface → target</th><th>called by</th><th>limits</th><th>version</th></tr></thead>
        <tbody>
          ${model.types.map(
            (t) => html`<tr data-test=${`route-${t.name}`}>
              <td><a href=${`#/actors?filter=${encodeURIComponent(`${t.name}/`)}`}>${t.name}</a></td>
              <td>${t.operations.length
                ? html`<ul class="operations">${t.operations.map((o) => html`<li><code>${o.interface}.${o.function}</code> <span class="muted">${o.signature}</span></li>`)}</ul>`
                : html`<span class="muted">handler only</span>`}</td>
              <td>${t.links.length
                ? html`<ul class="operations">${t.links.map((l) => { const { iface, target } = parseLink(l); return html`<li><code>${iface}</code> → <b>${target}</b></li>`; })}</ul>`
                : html`<span class="muted">–</span>`}</td>
              <td>${(callers.get(t.name) || []).join(', ') || html`<span class="muted">–</span>`}</td>
              <td class="muted">${t.max_attempts} attempts · ${num(t.deadline_ms)} ms · mailbox ${num(t.mailbox_bound)}</td>
              <td class="mono muted" title=${`deployed ${ago(t.deployed_at_ms)}`}>${t.version.slice(0, 12)}</td>
            </tr>`,
          )}
          ${model.types.length === 0 && html`<tr><td colspan="6" class="muted">No types deployed.</td></tr>`}
        </tbody>
      </table>
    </div>
    <div class="panel">
      <h2>Topics</h2>
      <table data-test="routing-topics">
        <thead><tr><th>topic</th><th>subscriber</th><th>filter</th></tr></thead>
        <tbody>
          ${[...topics.entries()].map(([topic, subs]) =>
            subs.map(
              (s, i) => html`<tr>
                ${i === 0 && html`<td rowspan=${subs.length}><b>${topic}</b> <span class="muted">${subs.length} subscriber${subs.length > 1 ? 's' : ''}</span></td>`}
                <td><a href=${`#/actors/${s.subscriber}`}>${s.subscriber}</a></td>
                <td>${s.filter ? html`<code>${s.filter}</code>` : html`<span class="muted">every message</span>`}</td>
              </tr>`,
            ),
          )}
          ${topics.size === 0 && html`<tr><td colspan="3" class="muted">No subscriptions: <code>pigeon subscribe TOPIC TYPE/KEY</code>.</td></tr>`}
        </tbody>
      </table>
    </div>
  </section>`;
}
