// Actor detail: counters, the mailbox (decoded payloads: WAVE for RPC
// calls, JSON pretty-printed, text, hex), state, recent errors with their
// attempts, and a form to send it a message. Reloads when the live feed
// says the actor changed.

import { html, useEffect, useState } from './vendor/htm-preact-standalone.mjs';
import { api } from './api.js';
import { ago, byPriority, decode, num, total, typeOf } from './format.js';

function Payload({ body, call }) {
  const shown = decode(body, call);
  return html`<div class="payload"><span class=${`kind ${shown.kind}`}>${shown.kind}</span><pre>${shown.text}</pre></div>`;
}

function SendForm({ ctx, address, type }) {
  const operations = (type && type.operations) || [];
  const [mode, setMode] = useState('send');
  const [payload, setPayload] = useState('');
  const [priority, setPriority] = useState(4);
  const [transient, setTransient] = useState(false);
  const [outcome, setOutcome] = useState(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e) => {
    e.preventDefault();
    const request = { to: address, priority: Number(priority), transient };
    if (mode === 'rpc') request.invoke = payload;
    else request.payload = payload;
    if (mode !== 'send') request.wait = 'replied';
    setBusy(true);
    try {
      const answer = await ctx.act(() => api('/messages', { method: 'POST', body: request }));
      const reply = answer.result || (answer.reply && decode(answer.reply).text);
      setOutcome({ ok: true, text: `sent ${answer.id}${answer.duplicate ? ' (duplicate)' : ''}${reply !== undefined && reply !== null ? ` → ${reply}` : ''}` });
    } catch (err) {
      setOutcome({ ok: false, text: err.message });
    } finally {
      setBusy(false);
    }
  };

  return html`<form class="panel send-form" onSubmit=${submit} data-test="send-form">
    <h2>Send a message</h2>
    <div class="row">
      <label>as <select value=${mode} onChange=${(e) => setMode(e.target.value)} data-test="send-mode">
        <option value="send">message (one-way)</option>
        <option value="call">call (wait for the reply)</option>
        ${operations.length > 0 && html`<option value="rpc">typed RPC call (WAVE)</option>`}
      </select></label>
      <label>priority <select value=${priority} onChange=${(e) => setPriority(e.target.value)} data-test="send-priority">
        ${[9, 8, 7, 6, 5, 4, 3, 2, 1, 0].map((p) => html`<option value=${p}>${p}</option>`)}
      </select></label>
      <label><input type="checkbox" checked=${transient} onChange=${(e) => setTransient(e.target.checked)} /> transient</label>
    </div>
    <textarea rows="3" placeholder=${mode === 'rpc' ? (operations[0] ? `${operations[0].function}(…)` : '') : 'payload (text)'}
      value=${payload} onInput=${(e) => setPayload(e.target.value)} data-test="send-payload"></textarea>
    ${mode === 'rpc' && html`<ul class="operations">${operations.map((o) => html`<li><code>${o.function}: ${o.signature}</code></li>`)}</ul>`}
    <div class="row">
      <button type="submit" class="primary" disabled=${busy} data-test="send-submit">${busy ? 'Sending…' : 'Send'}</button>
      ${outcome && html`<span class=${outcome.ok ? 'ok-text' : 'error'} data-test="send-outcome">${outcome.text}</span>`}
    </div>
  </form>`;
}

// Timers, sends with a delay and retries in backoff, soonest first; each can
// be cancelled, after a confirmation in the page naming it.
function DelayedPanel({ ctx, delayed, onChange }) {
  const [pending, setPending] = useState(null);
  const [outcome, setOutcome] = useState(null);
  const cancel = async () => {
    const id = pending;
    setPending(null);
    try {
      await ctx.act(() => api(`/delayed/${encodeURIComponent(id)}`, { method: 'DELETE' }));
      setOutcome({ ok: true, text: `Cancelled ${id}.` });
      onChange();
    } catch (e) {
      setOutcome({ ok: false, text: e.message });
    }
  };
  return html`<div class="panel">
    <h2>Delayed <small class="muted">timers, delayed sends, retries; soonest first</small></h2>
    ${pending && html`<div class="confirm" data-test="confirm">
      <span>Cancel ${pending}? It will never be delivered.</span>
      <button class="danger" onClick=${cancel} data-test="confirm-yes">Cancel it</button>
      <button onClick=${() => setPending(null)} data-test="confirm-no">Keep it</button>
    </div>`}
    ${outcome && html`<div class=${outcome.ok ? 'ok-text' : 'error'} data-test="delayed-outcome">${outcome.text}</div>`}
    <table data-test="delayed">
      <thead><tr><th>id</th><th>due</th><th>attempts</th><th>payload</th><th></th></tr></thead>
      <tbody>
        ${delayed.map(
          (d) => html`<tr>
            <td class="mono">${d.message.id}</td>
            <td>${new Date(d.due_ms).toLocaleString()}</td>
            <td class="num">${d.message.failures}</td>
            <td><${Payload} body=${d.message.payload} call=${d.message.call} /></td>
            <td><button class="small" onClick=${() => (setPending(d.message.id), setOutcome(null))} data-test=${`cancel-${d.message.id}`}>Cancel</button></td>
          </tr>`,
        )}
        ${delayed.length === 0 && html`<tr><td colspan="5" class="muted">Nothing delayed.</td></tr>`}
      </tbody>
    </table>
  </div>`;
}

// Purge the mailbox or delete the state, each after a confirmation in the
// page that says what goes; the node runs it between the actor's turns.
const CLEARS = {
  purge: { path: 'mailboxes', label: 'Purge mailbox', ask: 'pending, delayed and transient messages are deleted, not dead-lettered', done: 'messages purged' },
  forget: { path: 'state', label: 'Delete state', ask: 'every state entry is deleted; the next turn starts from empty state', done: 'state entries deleted' },
};

function ActorActions({ ctx, address, onChange }) {
  const [pending, setPending] = useState(null);
  const [outcome, setOutcome] = useState(null);
  const run = async () => {
    const action = CLEARS[pending];
    setPending(null);
    try {
      const { count } = await ctx.act(() => api(`/${action.path}/${encodeURIComponent(address)}`, { method: 'DELETE' }));
      setOutcome({ ok: true, text: `${count} ${action.done}.` });
      onChange();
    } catch (e) {
      setOutcome({ ok: false, text: e.message });
    }
  };
  return html`<div class="toolbar">
    ${Object.entries(CLEARS).map(([key, a]) => html`<button class="danger" onClick=${() => (setPending(key), setOutcome(null))} data-test=${key}>${a.label}</button>`)}
    ${outcome && html`<span class=${outcome.ok ? 'ok-text' : 'error'} data-test="clear-outcome">${outcome.text}</span>`}
    ${pending && html`<div class="confirm" data-test="confirm">
      <span>${CLEARS[pending].label} of ${address}? ${CLEARS[pending].ask}.</span>
      <button class="danger" onClick=${run} data-test="confirm-yes">${CLEARS[pending].label}</button>
      <button onClick=${() => setPending(null)} data-test="confirm-no">Keep it</button>
    </div>`}
  </div>`;
}

export function ActorPage({ ctx, address }) {
  const { model } = ctx;
  const [detail, setDetail] = useState(null);
  const [error, setError] = useState(null);
  const [reloads, setReloads] = useState(0);
  const version = (model.touched.get(address) || 0) + reloads;

  useEffect(() => {
    let live = true;
    api(`/actors/${encodeURIComponent(address)}`)
      .then((d) => live && (setDetail(d), setError(null)))
      .catch((e) => live && setError(e.message));
    return () => {
      live = false;
    };
  }, [address, version]);

  const type = model.types.find((t) => t.name === typeOf(address));
  const failures = model.failures.filter((f) => f.actor === address);
  const retrying = detail ? detail.mailbox.filter((m) => m.failures > 0) : [];

  return html`<section>
    <h1><a href="#/actors">Actors</a> / <span data-test="actor-address">${address}</span></h1>
    ${error && html`<p class="error" data-test="actor-error">${error}</p>`}
    ${detail && html`<${ActorActions} ctx=${ctx} address=${address} onChange=${() => setReloads((n) => n + 1)} />`}
    ${detail && html`<div class="cards">
      <div class="card"><div class="label">Mailbox depth</div><div class="value" data-test="depth">${num(total(detail.depths))}</div><div class="detail">${byPriority(detail.depths) || 'empty'}</div></div>
      <div class="card"><div class="label">In flight</div><div class="value" data-test="in-flight">${detail.in_flight ? 'running' : 'idle'}</div><div class="detail">${detail.in_flight || ''}</div></div>
      <div class="card"><div class="label">Processed</div><div class="value" data-test="processed">${num(detail.processed)}</div><div class="detail">last ${ago(detail.last_activity_ms)}</div></div>
      <div class=${`card ${detail.failed ? 'bad' : ''}`}><div class="label">Failed turns</div><div class="value" data-test="failed">${num(detail.failed)}</div><div class="detail">${num(detail.dead_lettered)} dead-lettered</div></div>
      <div class="card"><div class="label">Dropped / refused</div><div class="value">${num(detail.dropped)} / ${num(detail.refused)}</div><div class="detail">transient dropped / mailbox full</div></div>
    </div>`}
    <div class="split">
      <div class="grow">
        <${SendForm} ctx=${ctx} address=${address} type=${type} />
        ${detail && html`<div class="panel">
          <h2>Mailbox <small class="muted">next ${detail.mailbox.length}, in delivery order</small></h2>
          <table data-test="mailbox">
            <thead><tr><th>id</th><th>kind</th><th>prio</th><th>attempts</th><th>from</th><th>payload</th></tr></thead>
            <tbody>
              ${detail.mailbox.map(
                (m) => html`<tr class=${m.id === detail.in_flight ? 'running' : ''}>
                  <td class="mono">${m.id}${m.id === detail.in_flight ? html` <span class="badge busy">running</span>` : ''}</td>
                  <td>${m.kind}${m.delivery === 'transient' ? ' (transient)' : ''}</td>
                  <td class="num">${m.priority}</td>
                  <td class="num">${m.failures}</td>
                  <td>${m.from || '–'}</td>
                  <td><${Payload} body=${m.payload} call=${m.call} /></td>
                </tr>`,
              )}
              ${detail.mailbox.length === 0 && html`<tr><td colspan="6" class="muted">Empty.</td></tr>`}
            </tbody>
          </table>
        </div>`}
        ${detail && html`<${DelayedPanel} ctx=${ctx} delayed=${detail.delayed || []} onChange=${() => setReloads((n) => n + 1)} />`}
      </div>
      <div class="grow">
        ${detail && html`<div class="panel">
          <h2>State <small class="muted">${detail.state_more ? `the first ${detail.state.length} keys (more follow: \`pigeon inspect --after\` pages them)` : `${detail.state.length} keys`}</small></h2>
          <table data-test="state">
            <thead><tr><th>key</th><th>value</th></tr></thead>
            <tbody>
              ${detail.state.map((e) => html`<tr><td class="mono">${e.key}</td><td><${Payload} body=${e.value} /></td></tr>`)}
              ${detail.state.length === 0 && html`<tr><td colspan="2" class="muted">No state.</td></tr>`}
            </tbody>
          </table>
        </div>`}
        ${detail && html`<div class="panel">
          <h2>Recent errors</h2>
          <table data-test="errors">
            <thead><tr><th>message</th><th>attempts</th><th>error</th><th>now</th></tr></thead>
            <tbody>
              ${retrying.map((m) => html`<tr><td class="mono">${m.id}</td><td class="num">${m.failures}</td><td>${m.last_error}</td><td>retrying</td></tr>`)}
              ${detail.dead_letters.map(
                (d) => html`<tr><td class="mono">${d.message.id}</td><td class="num">${d.message.failures}</td><td>${d.error}</td>
                  <td><a href="#/dead-letters">dead letter #${d.id}</a> (${d.reason})</td></tr>`,
              )}
              ${failures.map((f) => html`<tr><td class="mono">${f.message}</td><td class="num">${f.attempt}</td><td>${f.error}</td><td class="muted">${ago(f.at_ms)}</td></tr>`)}
              ${retrying.length + detail.dead_letters.length + failures.length === 0 && html`<tr><td colspan="4" class="muted">No errors.</td></tr>`}
            </tbody>
          </table>
        </div>`}
      </div>
    </div>
  </section>`;
}
