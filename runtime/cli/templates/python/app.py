"""`{{name}}`: a Pigeon actor. It replies to every message with its payload,
and counts the messages it has handled in its state.

componentize-py generates the `wit_world` package from `wit/actor.wit`: each
imported interface is a module (`wit_world.imports.state`), the exported
`handler` is the class `Handler` below. Returning from `handle` is the `ok` of
its WIT `result`: the turn commits (state writes and sends included). Raising
`Err(text)` is the `err`: the turn rolls back and the message is retried.
"""

from typing import Optional

from wit_world import exports
from wit_world.imports import logging, state
from wit_world.imports.types import Envelope


class Handler(exports.Handler):
    def handle(self, message: Envelope) -> Optional[bytes]:
        stored = state.get("seen")
        seen = (int(stored.decode()) if stored is not None else 0) + 1
        state.set("seen", str(seen).encode())
        logging.log(logging.Level.INFO, f"message {seen} from {message.sender or 'outside'}")
        return message.payload
