"""`counter` in Python: the same actor as the Rust `counter`, command for command.

Payloads are text commands:
- `inc` adds one, `add N` adds N; both reply with the new count;
- `get` replies with the count.

With the header `op-id`, state key `applied/<op-id>` holds "<times> <order>"
(how often this id was applied, and the count right after it), as in Rust.
"""

from typing import Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import state
from wit_world.imports.types import Envelope


def read_count() -> int:
    value = state.get("count")
    try:
        return int(value.decode()) if value is not None else 0
    except ValueError:
        return 0


def record_applied(op_id: str, order: int) -> None:
    key = f"applied/{op_id}"
    value = state.get(key)
    times = 0
    if value is not None:
        try:
            times = int(value.decode().split(" ")[0])
        except ValueError:
            times = 0
    state.set(key, f"{times + 1} {order}".encode())


class Handler(exports.Handler):
    def handle(self, message: Envelope) -> Optional[bytes]:
        try:
            text = message.payload.decode()
        except UnicodeDecodeError:
            raise Err("counter: payload is not UTF-8 text")
        words = text.split()
        count = read_count()
        if words == ["inc"]:
            new_count = count + 1
        elif len(words) == 2 and words[0] == "add":
            if not words[1].isdigit():
                raise Err(f"counter: `add` takes a whole number, got `{words[1]}`")
            new_count = min(count + int(words[1]), 2**64 - 1)
        elif words == ["get"]:
            return str(count).encode()
        else:
            raise Err(f"counter: unknown command `{text}` (try inc, add N, get)")
        state.set("count", str(new_count).encode())
        for header in message.headers:
            if header.name == "op-id":
                record_applied(header.value, new_count)
                break
        return str(new_count).encode()
