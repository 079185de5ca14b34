"""Printing paths and values so that a person can read them and a shell can run them."""

from __future__ import annotations

import re


def escape(text: str) -> str:
    """Backslash escapes for what a terminal cannot show as is: control characters (a newline in a
    path) and the bytes of a non-UTF-8 name (decoded by git.py with surrogateescape) as \\xNN."""
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
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def is_plain(text: str) -> bool:
    """True when `text` can be printed as is (no control characters, no undecodable bytes)."""
    return all(ch.isprintable() or ch == " " for ch in text) and not any(0xDC80 <= ord(ch) <= 0xDCFF for ch in text)


def quote(path: str) -> str:
    """A path as a shell word (for the fix commands we print); ANSI-C `$'...'` for odd names."""
    if re.fullmatch(r"[A-Za-z0-9._/@:+=-]+", path):
        return path
    if not is_plain(path):
        return "$'" + escape(path) + "'"
    return "'" + path.replace("'", "'\\''") + "'"
