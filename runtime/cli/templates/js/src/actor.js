// `{{name}}`: a Pigeon actor. It replies to every message with its payload,
// and counts the messages it has handled in its state.
//
// Each interface the world imports is a module (`pigeon:actor/state@0.1.0`);
// the `handler` it exports is an exported object. Returning from `handle` is
// the `ok` of its WIT `result`: the turn commits (state writes and sends
// included). Throwing a string is the `err`: the turn rolls back and the
// message is retried.

import { get, set } from 'pigeon:actor/state@0.1.0';
import { log } from 'pigeon:actor/logging@0.1.0';

const text = new TextDecoder();
const bytes = new TextEncoder();

export const handler = {
  handle(message) {
    const stored = get('seen');
    const seen = (stored === undefined ? 0 : Number(text.decode(stored))) + 1;
    set('seen', bytes.encode(String(seen)));
    log('info', `message ${seen} from ${message.sender ?? 'outside'}`);
    return message.payload;
  },
};
