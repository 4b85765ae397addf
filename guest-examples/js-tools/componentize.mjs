// Builds a JavaScript actor into a component of the `pigeon:actor` world.
//
//   node js-tools/componentize.mjs <source.js> <out.wasm> [--wit <dir>]
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
let wit = resolve(dirname(fileURLToPath(import.meta.url)), '../../wit');
const witFlag = args.indexOf('--wit');
if (witFlag !== -1) {
  wit = resolve(args[witFlag + 1] ?? '');
  args.splice(witFlag, 2);
}
if (args.length !== 2) {
  console.error('usage: node componentize.mjs <source.js> <out.wasm> [--wit <dir>]');
  process.exit(2);
}
const [source, out] = args.map((p) => resolve(p));

const { component } = await componentize({
  sourcePath: source,
  witPath: wit,
  worldName: 'actor',
  disableFeatures: ['http', 'fetch-event'],
});
await writeFile(out, component);
console.error(`built ${out} (${(component.length / 1e6).toFixed(1)} MB)`);
