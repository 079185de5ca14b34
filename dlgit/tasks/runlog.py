"""A run's log as the screen showed it: every ordinary line once, in order, and progress bars in
their last state, as plain text.

Plain output (lines, and carriage-return bars such as tqdm's or Keras's in one line) takes a fast
path: each stream's unfinished line is kept until it ends, a carriage return replacing it. Output
that moves the cursor or colours text (nested tqdm bars with `ESC[A`, rich's live display, `\\b`)
goes through a terminal emulator (pyte) of a few rows at the bottom of the screen: a row that
scrolls off the top is what the terminal keeps, and is written out; once the output is back at
the start of an empty row, the screen is written out and the fast path takes over again. Memory
is bounded either way: a line longer than MAX_LINE is written out in pieces (a terminal wraps
it: a carriage return reaches only its last row).
"""

from __future__ import annotations

import os
import select
from typing import Any

MAX_LINE = 1 << 20  # bytes of one unfinished line kept before it is written out as it is
COLUMNS = 400  # the emulated screen: wide enough for any bar, so that a wrapped row is rare
KEEP = 16  # completed lines held back: a cursor moving up (a bar drawn below them) may still change them
ROWS = 60  # rows emulated at the bottom of the screen (nested bars, a rich live display)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:  # a terminal another program left non-blocking
            select.select([], [fd], [])


class _Line:
    """One output stream's unfinished line: the text after its last carriage return."""

    __slots__ = ("overwrite", "segment")

    def __init__(self) -> None:
        self.segment = bytearray()
        self.overwrite = False  # a carriage return ended the last piece: new text replaces the segment

    def feed(self, chunk: bytes) -> bytes:
        """The lines `chunk` completes, each in its final state (and a long line's head)."""
        if not self.overwrite and b"\r" not in chunk:  # plain lines: no per-line work
            end = chunk.rfind(b"\n") + 1
            if not end:
                self.segment += chunk
                return self._spill() if len(self.segment) > MAX_LINE else b""
            done = bytes(self.segment) + chunk[:end]
            self.segment = bytearray(chunk[end:])
            return done
        pieces = chunk.split(b"\n")
        done = []
        for piece in pieces[:-1]:
            self._apply(piece)
            done += (bytes(self.segment), b"\n")
            self.segment, self.overwrite = bytearray(), False
        self._apply(pieces[-1])
        if len(self.segment) > MAX_LINE:
            done.append(self._spill())
        return b"".join(done)

    def _spill(self) -> bytes:
        """A line over MAX_LINE is written out so far: memory stays bounded."""
        if self.overwrite:
            return b""
        head, self.segment = bytes(self.segment), bytearray()
        return head

    def _apply(self, piece: bytes) -> None:
        if not piece:
            return
        body = piece.rstrip(b"\r")  # "...\r\n" ends a line like "\n"
        if body:
            cut = body.rfind(b"\r")
            if cut >= 0:
                self.segment = bytearray(body[cut + 1:])
            elif self.overwrite:
                self.segment = bytearray(body)
            else:
                self.segment += body
        self.overwrite = len(body) < len(piece)

    def pending(self) -> bytes:
        """The unfinished line as a terminal holds it (the cursor back at its start after a `\\r`)."""
        return bytes(self.segment) + (b"\r" if self.overwrite else b"")

    def tail(self) -> bytes:
        """The unfinished line at the end of the output, if it shows anything."""
        return bytes(self.segment) + b"\n" if self.segment.strip() else b""


def _screen_class() -> type:
    """pyte's Screen whose rows scrolling off the top are written out, wrapped rows joined again
    (pyte is imported here: only a run whose output moves the cursor needs it)."""
    import pyte
    from pyte import modes

    class Screen(pyte.Screen):  # type: ignore[misc]
        def __init__(self, out: list[bytes]) -> None:
            super().__init__(COLUMNS, ROWS)
            self.set_mode(modes.LNM)  # "\n" starts a new line, as a terminal's onlcr makes it
            self.out = out
            self.wrapped: set[int] = set()  # rows that continue the row above (auto-wrap)
            self.drawing = False

        def draw(self, data: str) -> None:
            self.drawing = True
            try:
                super().draw(data)
            finally:
                self.drawing = False

        def linefeed(self) -> None:
            wrap = self.drawing
            super().linefeed()
            if wrap:
                self.wrapped.add(self.cursor.y)
            else:
                self.wrapped.discard(self.cursor.y)

        def index(self) -> None:
            top, bottom = self.margins or (0, self.lines - 1)
            if self.cursor.y == bottom and top == 0:
                self.out.append(self.row(0, continued=1 in self.wrapped))
                self.wrapped = {y - 1 for y in self.wrapped if y > 0}
            super().index()

        def row(self, y: int, continued: bool = False) -> bytes:
            line = self.buffer.get(y)
            text = "".join(line[x].data for x in range(max(line) + 1)) if line else ""
            return text.encode("utf-8", "surrogateescape") if continued else text.rstrip().encode("utf-8", "surrogateescape") + b"\n"

        def blank_from(self, y: int) -> bool:
            return all(not self.row(row).strip() for row in range(y, self.lines) if self.buffer.get(row))

        def rows_to(self, end: int) -> bytes:
            """Rows 0..end-1 as lines (trailing blank rows left out)."""
            rows = [self.row(y, continued=y + 1 in self.wrapped) for y in range(end)]
            while rows and not rows[-1].strip():
                rows.pop()
            return b"".join(rows)

    return Screen


class _Terminal:
    """The emulated bottom of the screen while the output moves the cursor."""

    def __init__(self) -> None:
        import pyte

        self.out: list[bytes] = []
        self.screen: Any = _screen_class()(self.out)
        self.stream = pyte.ByteStream(self.screen)

    def feed(self, chunk: bytes) -> bytes:
        self.stream.feed(chunk)
        done, self.out[:] = b"".join(self.out), []
        return done

    def settled(self, chunk: bytes) -> bool:
        """Back at the start of an empty row with nothing below it (and no sequence half read)."""
        cursor = self.screen.cursor
        return chunk.endswith(b"\n") and cursor.x == 0 and self.screen.blank_from(cursor.y)

    def close(self, everything: bool = True) -> bytes:
        """The screen's rows (above the cursor only when not `everything`) as lines."""
        end = self.screen.lines if everything else self.screen.cursor.y
        return self.screen.rows_to(end)


class _Stream:
    """One output stream (stdout or stderr) as its own screen would show it: two pipes ready at
    once cannot tell which line came first, so one stream's cursor never moves over the other's lines."""

    __slots__ = ("held", "line", "moved", "terminal")

    def __init__(self) -> None:
        self.line = _Line()
        self.terminal: _Terminal | None = None
        self.moved = False  # it has drawn a bar or moved the cursor: its last KEEP lines are held back
        self.held = b""  # those lines, not yet written


class ProgressLog:
    """The run's output as a log keeps it (see the module's notes). Written as it comes but, in a
    stream that moves the cursor, its last KEEP lines, which a cursor moving up may still change
    (a kill of dlgit itself loses those and the emulated screen; its record says how the run ended)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.streams: dict[int, _Stream] = {}

    def feed(self, stream: int, chunk: bytes) -> None:
        state = self.streams.get(stream) or self.streams.setdefault(stream, _Stream())
        if state.terminal is None:
            if b"\x1b" not in chunk and b"\b" not in chunk:  # the fast path
                state.moved = state.moved or b"\r" in chunk  # a bar: a cursor may come back to the lines around it
                if done := state.line.feed(chunk):
                    self._hold(state, done)
                return
            state.terminal, state.moved = _Terminal(), True
            pending, state.held, state.line = state.held + state.line.pending(), b"", _Line()
            self._write(state.terminal.feed(pending))
        self._write(state.terminal.feed(chunk))
        if state.terminal.settled(chunk) and b"\x1b" not in chunk and b"\b" not in chunk:
            done, state.terminal = state.terminal.close(everything=False), None
            self._hold(state, done)

    def _hold(self, state: _Stream, done: bytes) -> None:
        """Write the completed lines but, once the stream has moved the cursor, the last KEEP (at
        most MAX_LINE bytes of them), which stay held."""
        if not state.moved:
            self._write(done)
            return
        data = state.held + done
        cut = len(data)
        for _ in range(KEEP + 1):
            cut = data.rfind(b"\n", 0, cut)
            if cut < 0:
                break
        if len(data) - (cut + 1) > MAX_LINE:
            cut = len(data) - 1
        self._write(data[:cut + 1])
        state.held = data[cut + 1:]

    def _write(self, data: bytes) -> None:
        if data:
            write_all(self.fd, data)

    def close(self) -> None:
        for state in self.streams.values():
            if state.terminal is not None:
                self._write(state.terminal.close())
            self._write(state.held)
            self._write(state.line.tail())
        os.close(self.fd)
