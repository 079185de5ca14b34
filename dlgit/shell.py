"""Printing paths and values so that a person can read them and a shell can run them.

`quote` makes any value one shell word that bash reads back byte for byte; `printable` makes text
safe to show on a terminal (no escape sequence, carriage return or bidirectional override gets
through: a pushed subject or path must not write to the pusher's terminal or clipboard).
"""

from __future__ import annotations

import re


def escape(text: str) -> str:
    """Backslash escapes for what a terminal cannot show as is, in bash's `$'...'` syntax: control
    and other unprintable characters as the \\xNN of their UTF-8 bytes, the bytes of a non-UTF-8 name
    (decoded with surrogateescape) as \\xNN, and `\\` and `'` escaped."""
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch in "\\'":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif not ch.isprintable() and ch != " ":
            out.append("".join(f"\\x{byte:02x}" for byte in ch.encode("utf-8", "surrogatepass")))
        else:
            out.append(ch)
    return "".join(out)


def is_plain(text: str) -> bool:
    """True when `text` can be printed as is: no control characters, no format characters (bidi
    overrides), no undecodable bytes (lone surrogates are unprintable too)."""
    return text.isprintable()


def printable(text: str) -> str:
    """`text` for a terminal: every character it cannot show plainly (ESC, CR, a newline inside one
    value, bidirectional overrides, undecodable bytes) as a backslash escape; the rest, quotes and
    backslashes included, as it is."""
    return text if text.isprintable() else "".join(ch if ch.isprintable() else escape(ch) for ch in text)


def quote(path: str) -> str:
    """A value as one shell word (for the fix commands we print); ANSI-C `$'...'` for odd names."""
    if re.fullmatch(r"[A-Za-z0-9._/@:+=-]+", path):
        return path
    if not is_plain(path):
        return "$'" + escape(path) + "'"
    return "'" + path.replace("'", "'\\''") + "'"
