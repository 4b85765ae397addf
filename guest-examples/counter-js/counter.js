// `counter` in JavaScript: the same actor as the Rust `counter`, command for
// command.
//
// Payloads are text commands:
// - `inc` adds one, `add N` adds N; both reply with the new count;
// - `get` replies with the count.
//
// With the header `op-id`, state key `applied/<op-id>` holds "<times> <order>"
// (how often this id was applied, and the count right after it), as in Rust.
//
// componentize-js maps the world onto ES modules: each imported interface is
// a module (`pigeon:actor/state@0.1.0`), each exported interface an exported
// object (`handler`). A returned value is the `ok` case of a WIT `result`; a
// thrown one is its `err` case.

import { get, set } from 'pigeon:actor/state@0.1.0';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
const MAX = 2n ** 64n - 1n;

function readText(key) {
  const value = get(key);
  return value === undefined ? undefined : decoder.decode(value);
}

function readCount() {
  const text = readText('count');
  return text !== undefined && /^[0-9]+$/.test(text) ? BigInt(text) : 0n;
}

function recordApplied(opId, order) {
  const key = `applied/${opId}`;
  const first = (readText(key) ?? '').split(' ')[0];
  const times = /^[0-9]+$/.test(first) ? BigInt(first) : 0n;
  set(key, encoder.encode(`${times + 1n} ${order}`));
}

function handle(message) {
  let text;
  try {
    text = decoder.decode(message.payload);
  } catch {
    throw 'counter: payload is not UTF-8 text';
  }
  const words = text.split(/\s+/).filter((w) => w !== '');
  const count = readCount();
  let next;
  if (words.length === 1 && words[0] === 'inc') {
    next = count + 1n;
  } else if (words.length === 2 && words[0] === 'add') {
    if (!/^[0-9]+$/.test(words[1])) {
      throw `counter: \`add\` takes a whole number, got \`${words[1]}\``;
    }
    next = count + BigInt(words[1]);
    if (next > MAX) next = MAX;
  } else if (words.length === 1 && words[0] === 'get') {
    return encoder.encode(`${count}`);
  } else {
    throw `counter: unknown command \`${text}\` (try inc, add N, get)`;
  }
  set('count', encoder.encode(`${next}`));
  const op = message.headers.find((h) => h.name === 'op-id');
  if (op !== undefined) recordApplied(op.value, next);
  return encoder.encode(`${next}`);
}

export const handler = { handle };
