// Builds a JavaScript actor into a component of the `pigeon:actor` world.
//
//   node js-tools/componentize.mjs <source.js> <out.wasm> [--wit <dir>] [--world <name>] [--with-http]
//
// The WIT directory defaults to the repository's `wit/` (the `actor` world);
// a guest of another package passes its own, with `pigeon:actor` in `deps/`.
//
// componentize-js's API is used rather than the `jco componentize` CLI, which
// fails on relative `--wit` paths. The features an actor cannot use are
// disabled: `http` and `fetch-event` would make the component import
// `wasi:http`, which a Pigeon node does not provide (actors talk through
// messages). stdio, clocks and random stay: the node grants them (console
// output goes to the node's log; clocks and random are capability-free).

import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
function option(name, fallback) {
  const at = args.indexOf(name);
  if (at === -1) return fallback;
  const [, value] = args.splice(at, 2);
  return value;
}
const wit = resolve(option('--wit', resolve(dirname(fileURLToPath(import.meta.url)), '../../wit')));
const world = option('--world', 'actor');
// Only to show the node's refusal: componentize-js's default features.
const withHttp = args.indexOf('--with-http');
if (withHttp !== -1) args.splice(withHttp, 1);
if (args.length !== 2) {
  console.error('usage: node componentize.mjs <source.js> <out.wasm> [--wit <dir>] [--world <name>] [--with-http]');
  process.exit(2);
}
const [source, out] = args.map((p) => resolve(p));

const { component } = await componentize({
  sourcePath: source,
  witPath: wit,
  worldName: world,
  disableFeatures: withHttp === -1 ? ['http', 'fetch-event'] : [],
});
await writeFile(out, component);
console.error(`built ${out} (${(component.length / 1e6).toFixed(1)} MB)`);
