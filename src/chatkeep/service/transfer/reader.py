"""Reading big JSON files a value at a time, with the standard library's decoder.

`Values` holds a window of the text: enough for the value being decoded and no more. A JSON array
(a ChatGPT export, chatkeep's JSON document) yields its elements one by one, and JSON Lines its
records one by one, so memory stays bounded by the largest single value (one conversation), never
the file. A value larger than `max_value_chars` is refused rather than read whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from chatkeep.errors import InvalidInput

CHUNK_CHARS = 1 << 16
MAX_VALUE_CHARS = 256 << 20
_WHITESPACE = " \t\r\n"


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        keys = [key for key, _ in pairs]
        twice = next(key for key in keys if keys.count(key) > 1)
        raise ValueError(f"the key {twice[:64]!r} appears twice in one object")
    return obj


_decoder = json.JSONDecoder(object_pairs_hook=_pairs)


class Values:
    """JSON values read from a text stream in order. Errors are `InvalidInput` (code `invalid_json`)
    naming the value's position (`where`)."""

    def __init__(self, stream: IO[str], *, max_value_chars: int = MAX_VALUE_CHARS) -> None:
        self._stream = stream
        self._buffer = ""
        self._at = 0
        self._eof = False
        self._max = max_value_chars

    def _more(self, chars: int = CHUNK_CHARS) -> bool:
        if self._eof:
            return False
        try:
            chunk = self._stream.read(chars)
        except UnicodeDecodeError:
            raise InvalidInput("the file is not valid UTF-8", code="invalid_json") from None
        if not chunk:
            self._eof = True
            return False
        self._buffer = self._buffer[self._at :] + chunk
        self._at = 0
        return True

    def peek(self) -> str:
        """The next character that is not whitespace ('' at the end)."""
        while True:
            while self._at < len(self._buffer) and self._buffer[self._at] in _WHITESPACE:
                self._at += 1
            if self._at < len(self._buffer):
                return self._buffer[self._at]
            self._buffer, self._at = "", 0
            if not self._more():
                return ""

    def window(self, chars: int = 256) -> str:
        """At least `chars` characters of what comes next (fewer at the end of the file)."""
        self.peek()
        while len(self._buffer) - self._at < chars and self._more():
            pass
        return self._buffer[self._at : self._at + chars]

    def skip(self, chars: int) -> None:
        self._at += chars

    def expect(self, char: str, where: str) -> None:
        found = self.peek()
        if found != char:
            shown = repr(found) if found else "the end of the file"
            raise InvalidInput(f"{where}: expected {char!r}, found {shown}", code="invalid_json")
        self._at += 1

    def value(self, where: str) -> Any:
        """Decode the next value, reading more text while it is incomplete (twice as much each
        time, so a big value is decoded a bounded number of times)."""
        self.peek()
        while True:
            try:
                value, end = _decoder.raw_decode(self._buffer, self._at)
            except json.JSONDecodeError as exc:
                held = len(self._buffer) - self._at
                if held > self._max:
                    raise InvalidInput(
                        f"{where}: a value larger than {self._max} characters", code="invalid_json"
                    ) from None
                if not self._more(max(CHUNK_CHARS, held)):
                    raise InvalidInput(f"{where}: not valid JSON ({exc.msg})", code="invalid_json") from None
                continue
            except (ValueError, RecursionError) as exc:
                raise InvalidInput(f"{where}: not valid JSON ({exc})", code="invalid_json") from None
            if end == len(self._buffer) and not isinstance(value, dict | list) and self._more():
                continue  # a number may go on in the next chunk
            self._at = end
            return value

    def elements(self, where: str) -> Iterator[Any]:
        """The elements of the array that comes next, each decoded when asked for."""
        self.expect("[", where)
        if self.peek() == "]":
            self._at += 1
            return
        index = 0
        while True:
            yield self.value(f"{where}[{index}]")
            index += 1
            if self.peek() == ",":
                self._at += 1
                continue
            self.expect("]", f"{where}[{index - 1}]")
            return

    def end(self, where: str) -> None:
        """Nothing but whitespace may follow."""
        if self.peek():
            raise InvalidInput(f"{where}: unexpected text after the JSON value", code="invalid_json")
