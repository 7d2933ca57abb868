"""An incremental Server-Sent Events decoder (the WHATWG event-stream format).

Bytes go in as they arrive, in pieces of any size; complete events come out. Lines
end in LF, CRLF or CR; ``data`` lines of one event are joined with newlines; comment
lines (``:``) such as keep-alives are dropped. The decoder does no I/O, so the
transport owns every timeout. :meth:`SseDecoder.events` hands the events out one by
one as it finds them, so a reader can pass the first on before it splits the rest of a burst.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

MAX_EVENT_BYTES = 8 * 1024 * 1024


class SseEvent(NamedTuple):
    """One event: ``event`` is the ``event:`` field (``message`` when absent), ``data`` its
    ``data`` lines joined with newlines, ``id`` the last ``id:`` seen."""

    event: str
    data: str
    id: str = ""


class SseDecoder:
    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []
        self._id = ""
        self._size = 0
        self._max = max_event_bytes
        self._after_cr = False

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Decode ``chunk``; returns the events it completed, in order."""
        return list(self.events(chunk))

    def events(self, chunk: bytes) -> Iterator[SseEvent]:
        """Decode ``chunk``, yielding each event it completes as soon as it is found.

        Iterate it to its end before the next call: the events after a pause are split then."""
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across two chunks
        self._after_cr = chunk.endswith(b"\r")
        self._size += len(chunk)
        if self._size > self._max:
            raise ValueError(f"an event-stream event exceeded {self._max} bytes")
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = buffer.rfind(b"\n")
        self._buffer = buffer[end + 1 :]
        if end < 0:
            return
        start = 0
        while start <= end:  # the common lines (data, the blank line ending an event) first, inline
            stop = buffer.index(b"\n", start)
            raw = buffer[start:stop]
            start = stop + 1
            if raw.startswith(b"data:"):
                self._data.append(raw[6 if raw[5:6] == b" " else 5 :].decode("utf-8", errors="replace"))
                continue
            if not raw and self._data:
                name, data = self._event or "message", self._data
                self._event, self._data, self._size = "", [], len(self._buffer)
                yield SseEvent(name, data[0] if len(data) == 1 else "\n".join(data), self._id)
                continue
            event = self._line(raw.decode("utf-8", errors="replace"))
            if event is not None:
                yield event

    def close(self) -> list[SseEvent]:
        """End of stream: an event without its blank line still counts (some servers omit it)."""
        events = self.feed(b"\n") if self._buffer else []
        tail = self._line("")
        return events + ([tail] if tail is not None else [])

    def _line(self, line: str) -> SseEvent | None:
        if not line:
            if not self._data and not self._event:
                return None
            event = SseEvent(event=self._event or "message", data="\n".join(self._data), id=self._id)
            self._event, self._data, self._size = "", [], len(self._buffer)
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None
