// Dead letters: messages that will not be delivered again unless replayed.
// Replay or purge one or all; every action asks for confirmation first,
// in the page (no browser dialog), naming what it will do.

import { html, useState } from './vendor/htm-preact-standalone.mjs';
import { api } from './api.js';
import { ago, clip, decode } from './format.js';

export function DeadLettersPage({ ctx }) {
  const { model } = ctx;
  const [pending, setPending] = useState(null);
  const [outcome, setOutcome] = useState(null);

  const ask = (action, ids) => {
    const what = ids ? `dead letter #${ids[0]}` : `all ${model.dead.length} dead letters`;
    const text = action === 'replay'
      ? `Replay ${what}? ${ids ? 'It goes' : 'They go'} back into ${ids ? 'its mailbox' : 'their mailboxes'} with a fresh attempt count.`
      : `Purge ${what}? This deletes ${ids ? 'it' : 'them'} for good.`;
    setPending({ action, ids, text });
    setOutcome(null);
  };

  const confirm = async () => {
    const { action, ids } = pending;
    setPending(null);
    try {
      const body = ids ? { ids } : {};
      const { count, missing = [] } = await ctx.act(() => api(`/dead-letters/${action}`, { method: 'POST', body }));
      const gone = missing.length ? ` ${missing.map((id) => `#${id}`).join(', ')} had gone already.` : '';
      setOutcome({ ok: !missing.length, text: `${action === 'replay' ? 'Replayed' : 'Purged'} ${count} dead letter${count === 1 ? '' : 's'}.${gone}` });
      ctx.reload();
    } catch (e) {
      setOutcome({ ok: false, text: e.message });
    }
  };

  return html`<section>
    <h1>Dead letters <small class="muted" data-test="dead-total">${model.dead.length}</small></h1>
    <div class="toolbar">
      <button onClick=${() => ask('replay', null)} disabled=${!model.dead.length} data-test="replay-all">Replay all</button>
      <button class="danger" onClick=${() => ask('purge', null)} disabled=${!model.dead.length} data-test="purge-all">Purge all</button>
      ${outcome && html`<span class=${outcome.ok ? 'ok-text' : 'error'} data-test="dead-outcome">${outcome.text}</span>`}
    </div>
    ${pending && html`<div class="confirm" data-test="confirm">
      <span>${pending.text}</span>
      <button class=${pending.action === 'purge' ? 'danger' : 'primary'} onClick=${confirm} data-test="confirm-yes">${pending.action === 'replay' ? 'Replay' : 'Purge'}</button>
      <button onClick=${() => setPending(null)} data-test="confirm-no">Cancel</button>
    </div>`}
    <table data-test="dead-letters">
      <thead><tr><th>#</th><th>actor</th><th>reason</th><th>attempts</th><th>error</th><th>message</th><th>when</th><th></th></tr></thead>
      <tbody>
        ${model.dead.map((d) => {
          const shown = decode(d.message.payload, d.message.call);
          return html`<tr data-test=${`dead-${d.id}`}>
            <td class="num">${d.id}</td>
            <td><a href=${`#/actors/${d.message.to}`}>${d.message.to}</a></td>
            <td><span class=${`badge ${d.reason === 'expired' ? 'warn' : 'bad'}`}>${d.reason}</span></td>
            <td class="num">${d.message.failures}</td>
            <td title=${d.error}>${clip(d.error, 80)}</td>
            <td><span class=${`kind ${shown.kind}`}>${shown.kind}</span> <code>${clip(shown.text, 60)}</code></td>
            <td class="muted">${ago(d.at_ms)}</td>
            <td class="actions">
              <button class="small" onClick=${() => ask('replay', [d.id])} data-test="replay">Replay</button>
              <button class="small danger" onClick=${() => ask('purge', [d.id])} data-test="purge">Purge</button>
            </td>
          </tr>`;
        })}
        ${model.dead.length === 0 && html`<tr><td colspan="8" class="muted">No dead letters.</td></tr>`}
      </tbody>
    </table>
  </section>`;
}
