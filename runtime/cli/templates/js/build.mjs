// Builds src/actor.js into {{name}}.wasm (or the path given as argument), a
// component of the `pigeon:actor` world. `npm run build` (or `pigeon build`)
// runs it.
//
// `http` and `fetch-event` are disabled: they would make the component import
// `wasi:http`, which a Pigeon node does not provide (actors talk through
// messages) and so would refuse at deploy.

import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile } from 'node:fs/promises';

const { component } = await componentize({
  sourcePath: 'src/actor.js',
  witPath: 'wit',
  worldName: 'actor',
  disableFeatures: ['http', 'fetch-event'],
});
const out = process.argv[2] ?? '{{name}}.wasm';
await writeFile(out, component);
console.error(`built ${out} (${(component.length / 1e6).toFixed(1)} MB)`);
