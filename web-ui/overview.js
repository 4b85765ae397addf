// Overview: who the node is, what it hosts, how fast messages go in and
// out (a live chart of the last minutes), what waits, and what fails.

import { html, useEffect, useRef } from './vendor/htm-preact-standalone.mjs';
import uPlot from './vendor/uPlot.esm.js';
import { ago, clip, num, span } from './format.js';

function Card({ label, value, detail, test, tone }) {
  return html`<div class=${`card ${tone || ''}`}>
    <div class="label">${label}</div>
    <div class="value" data-test=${test}>${value}</div>
    ${detail && html`<div class="detail">${detail}</div>`}
  </div>`;
}

/** Messages/s in and out and failures/s, drawn by uPlot. */
function RateChart({ history }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const opts = {
      width: box.current.clientWidth || 600,
      height: 220,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      series: [
        {},
        { label: 'in (msg/s)', stroke: '#2563eb', width: 2, value: (u, v) => (v == null ? '–' : num(v)) },
        { label: 'out (turns/s)', stroke: '#16a34a', width: 2, value: (u, v) => (v == null ? '–' : num(v)) },
        { label: 'failures/s', stroke: '#dc2626', width: 2, value: (u, v) => (v == null ? '–' : num(v)) },
      ],
      axes: [{}, { label: 'per second', size: 60 }],
      legend: { live: true },
    };
    plot.current = new uPlot(opts, [[], [], [], []], box.current);
    const resize = new ResizeObserver(() => plot.current.setSize({ width: box.current.clientWidth, height: 220 }));
    resize.observe(box.current);
    return () => {
      resize.disconnect();
      plot.current.destroy();
    };
  }, []);
  useEffect(() => {
    if (plot.current) plot.current.setData([history.t, history.accepted, history.completed, history.failed]);
  }, [history]);
  return html`<div class="chart" ref=${box} data-test="rate-chart"></div>`;
}

function Queued({ queued }) {
  const max = Math.max(1, ...queued);
  return html`<table class="priorities" data-test="queued-by-priority">
    <tbody>
      ${queued
        .map((depth, p) => ({ depth, p }))
        .reverse()
        .map(
          ({ depth, p }) => html`<tr>
            <td class="muted">p${p}</td>
            <td class="bar-cell"><div class="bar" style=${`width:${(100 * depth) / max}%`}></div></td>
            <td class="num">${num(depth)}</td>
          </tr>`,
        )}
    </tbody>
  </table>`;
}

export function OverviewPage({ ctx }) {
  const { model } = ctx;
  const { health, tick, rates } = model;
  const queued = tick ? tick.queued : new Array(10).fill(0);
  const totalQueued = queued.reduce((a, b) => a + b, 0);
  const actors = tick ? Math.max(tick.actors, model.actors.size) : model.actors.size;
  const active = tick ? tick.active_actors : health ? health.active_actors : 0;
  return html`<section>
    <h1>Overview</h1>
    <div class="cards">
      <${Card}
        label="Node"
        value=${health ? health.host : '…'}
        detail=${health && html`<span data-test="node-identity">pigeon ${health.version} · up ${span(tick ? tick.uptime_ms : health.uptime_ms)} · data in <code>${health.data_dir}</code></span>`}
      />
      <${Card} label="Actor types" value=${num(model.types.length)} test="type-count" detail=${model.types.map((t) => t.name).join(', ')} />
      <${Card} label="Actors" value=${html`${num(active)} <small>active</small>`} test="active-actors" detail=${`${num(Math.max(0, actors - active))} passivated of ${num(actors)}`} />
      <${Card} label="In" value=${html`${num(rates ? rates.accepted : 0)} <small>msg/s</small>`} test="rate-in" detail=${tick && `${num(tick.counters.accepted)} since start`} />
      <${Card} label="Out" value=${html`${num(rates ? rates.completed : 0)} <small>turns/s</small>`} test="rate-out" detail=${tick && `${num(tick.counters.completed)} since start`} />
      <${Card} label="Failures" value=${html`${num(rates ? rates.failed : 0)} <small>/s</small>`} tone=${rates && rates.failed ? 'bad' : ''} test="rate-failed" detail=${tick && `${num(tick.counters.failed)} since start`} />
      <${Card} label="Queued" value=${num(totalQueued)} test="queued-total" detail=${tick && `${num(tick.delayed)} delayed or in backoff`} />
      <${Card} label="Dead letters" value=${html`<a href="#/dead-letters">${num(tick ? tick.dead_letters : model.dead.length)}</a>`} tone=${tick && tick.dead_letters ? 'bad' : ''} test="dead-count" />
    </div>
    <div class="split">
      <div class="panel grow">
        <h2>Throughput, last 5 minutes</h2>
        <${RateChart} history=${model.history} />
      </div>
      <div class="panel">
        <h2>Queued by priority</h2>
        <${Queued} queued=${queued} />
      </div>
    </div>
    <div class="split">
      <div class="panel grow">
        <h2>Actor types</h2>
        <table data-test="types">
          <thead><tr><th>type</th><th>operations</th><th>links</th><th>deployed</th></tr></thead>
          <tbody>
            ${model.types.map(
              (t) => html`<tr data-test=${`type-${t.name}`}>
                <td><a href=${`#/actors?filter=${encodeURIComponent(`${t.name}/`)}`}>${t.name}</a></td>
                <td>${t.operations.length || '–'}</td>
                <td>${t.links.length ? t.links.join(', ') : '–'}</td>
                <td class="muted">${ago(t.deployed_at_ms)}</td>
              </tr>`,
            )}
            ${model.types.length === 0 && html`<tr><td colspan="4" class="muted">No types deployed: <code>pigeon deploy app.wasm --name NAME</code></td></tr>`}
          </tbody>
        </table>
      </div>
      <div class="panel grow">
        <h2>Recent failures</h2>
        <table data-test="failures">
          <thead><tr><th>actor</th><th>attempt</th><th>error</th><th>when</th></tr></thead>
          <tbody>
            ${model.failures.slice(0, 10).map(
              (f) => html`<tr>
                <td><a href=${`#/actors/${f.actor}`}>${f.actor}</a></td>
                <td>${f.attempt}${f.dead ? html` <span class="badge bad">dead</span>` : ''}</td>
                <td title=${f.error}>${clip(f.error, 70)}</td>
                <td class="muted">${ago(f.at_ms)}</td>
              </tr>`,
            )}
            ${model.failures.length === 0 && html`<tr><td colspan="4" class="muted">No failures since this page opened.</td></tr>`}
          </tbody>
        </table>
      </div>
    </div>
  </section>`;
}
