"""Bounded YAML loading for every file dlgit reads from the repositories it judges.

A pushed file must not tie up a server: a 405-byte `config.yaml` of nested aliases expands to
gigabytes, a 100 MB file of small keys takes minutes to parse, and deep nesting overflows PyYAML's
recursive composer. Here every limit is checked before the work can explode: the size before
parsing, nesting depth, alias count and expanded size while composing, event by event, with
aliases charged for every value they repeat (a billion-laughs document fails after reading a
few hundred bytes).

The composer is ours (iterative, so no RecursionError) and reads events from libyaml's parser when
PyYAML has it, from PyYAML's pure parser otherwise; construction is SafeConstructor's, so a
document loads exactly as `yaml.safe_load` loads it. Errors: `YamlLimitError` for a limit,
`yaml.YAMLError` (with its mark) for malformed YAML, including values SafeConstructor cannot build
(`2020-13-45`, a 5,000-digit integer), which PyYAML lets escape as ValueError.

PyYAML is imported on first use only: hooks import this module.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from yaml import Node

MAX_BYTES = 1024 * 1024  # a task config or .dlgit.yaml is a few hundred bytes; large-file refuses far less than this
MAX_DEPTH = 64  # nesting of lists and maps, aliases included; configs nest 2 or 3 levels
MAX_ALIASES = 100  # a config sharing a few blocks uses a handful
MAX_NODES = 100_000  # values in the document once every alias is expanded (scalars, lists and maps each count 1)
SHOWN_CHARS = 80  # a value quoted in a message


class YamlLimitError(ValueError):
    """A document over one of the limits; `limit` names it, `line` (1-based) is where, when known."""

    def __init__(self, limit: str, message: str, line: int | None = None) -> None:
        self.limit = limit
        self.line = line
        super().__init__(f"{message} at line {line}" if line else message)


class _Limits(NamedTuple):
    max_bytes: int
    max_depth: int
    max_aliases: int
    max_nodes: int


def load(source: str | bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH, max_aliases: int = MAX_ALIASES,
         max_nodes: int = MAX_NODES, pure: bool = False) -> Any:
    """The one document in `source` as Python data, like `yaml.safe_load`, within the limits.
    Bytes must be UTF-8 (UnicodeDecodeError otherwise). `pure`: PyYAML's Python parser even when
    libyaml is there."""
    limits = _Limits(max_bytes, max_depth, max_aliases, max_nodes)
    loader = _loader_class(pure)(_text(source, max_bytes))
    try:
        node = _Composer(loader, limits).single_node()
        return None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def compose(source: str | bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH, max_aliases: int = MAX_ALIASES,
            max_nodes: int = MAX_NODES, pure: bool = False) -> Node | None:
    """The node tree of the one document in `source`, like `yaml.compose` with SafeLoader, within the
    limits (None for an empty document). Nodes carry their marks, for line numbers."""
    limits = _Limits(max_bytes, max_depth, max_aliases, max_nodes)
    loader = _loader_class(pure)(_text(source, max_bytes))
    try:
        return _Composer(loader, limits).single_node()
    finally:
        loader.dispose()


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """`repr(value)` for a message, at most `limit` characters (cut with '…'); bounded work even
    for a huge or shared structure."""
    import reprlib

    shortener = reprlib.Repr()
    shortener.maxstring = shortener.maxother = limit
    shortener.maxlevel = 3  # at most 6 items a level: a few hundred items whatever the value
    text = shortener.repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(source: str | bytes, max_bytes: int) -> str:
    """`source` as text, refused before any decoding or parsing when it is over `max_bytes`."""
    if isinstance(source, bytes):
        size = len(source)
        if size <= max_bytes:
            return source.decode("utf-8")
    elif len(source) > max_bytes:  # a character takes at least one byte
        size = None
    else:
        size = len(source.encode("utf-8", "surrogatepass"))
        if size <= max_bytes:
            return source
    exact = f" ({size:,} bytes)" if size is not None else ""
    raise YamlLimitError("max_bytes", f"YAML document is larger than the limit of {max_bytes:,} bytes{exact}; it was not parsed")


@functools.cache
def _loader_class(pure: bool) -> type:
    """SafeLoader (libyaml's parser unless `pure`) whose values that cannot be built are YAMLErrors
    with the value's mark, not bare ValueErrors."""
    import yaml

    base = yaml.SafeLoader if pure or not hasattr(yaml, "CSafeLoader") else yaml.CSafeLoader

    class Loader(base):  # type: ignore[valid-type, misc]
        def construct_object(self, node: Node, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep)
            except (ValueError, TypeError, OverflowError) as exc:
                raise yaml.constructor.ConstructorError(None, None, f"cannot read the value {shown(node.value)} ({exc})",
                                                        node.start_mark) from None

    return Loader


class _Open:
    """A list or map being composed."""

    __slots__ = ("anchor", "height", "key", "node", "start")

    def __init__(self, node: Node, anchor: str | None, start: int) -> None:
        self.node = node
        self.anchor = anchor
        self.start = start  # the expanded count before this node
        self.height = 0  # deepest nesting below it so far
        self.key: Node | None = None  # a map's key waiting for its value


class _Composer:
    """PyYAML's Composer, iterative and counting: nesting depth, aliases, and every value the
    document holds once its aliases are expanded."""

    def __init__(self, loader: Any, limits: _Limits) -> None:
        self.loader = loader
        self.limits = limits
        self.anchors: dict[str, tuple[Node, int, int] | None] = {}  # anchor -> (node, expanded size, height); None while open
        self.expanded = 0
        self.aliases = 0

    def single_node(self) -> Node | None:
        import yaml

        try:
            return self.document()
        except yaml.MarkedYAMLError as exc:
            if exc.problem == "exceeded maximum nesting depth":  # libyaml's own cap (1,000), met while scanning ahead
                raise self.too_deep(exc.problem_mark) from None
            raise

    def document(self) -> Node | None:
        from yaml.composer import ComposerError
        from yaml.events import StreamEndEvent

        get, check = self.loader.get_event, self.loader.check_event
        get()  # stream start
        if check(StreamEndEvent):
            return None
        get()  # document start
        root = self.node()
        get()  # document end
        if not check(StreamEndEvent):
            raise ComposerError("expected a single document in the stream", root.start_mark, "but found another document",
                                get().start_mark)
        return root

    def node(self) -> Node:
        """The root node, composed from the events of one document."""
        from yaml.events import AliasEvent, CollectionStartEvent, MappingStartEvent, ScalarEvent
        from yaml.nodes import MappingNode, ScalarNode, SequenceNode

        stack: list[_Open] = []
        while True:
            event = self.loader.get_event()
            if isinstance(event, AliasEvent):
                node, height = self.alias(event, len(stack))
            elif isinstance(event, ScalarEvent):
                self.count(1, event)
                node = ScalarNode(self.tag(ScalarNode, event), event.value, event.start_mark, event.end_mark, style=event.style)
                height = 0
                if event.anchor is not None:
                    self.new_anchor(event)
                    self.anchors[event.anchor] = (node, 1, 0)
            elif isinstance(event, CollectionStartEvent):
                if event.anchor is not None:
                    self.new_anchor(event)
                if len(stack) >= self.limits.max_depth:
                    raise self.too_deep(event.start_mark)
                kind = MappingNode if isinstance(event, MappingStartEvent) else SequenceNode
                stack.append(_Open(kind(self.tag(kind, event), [], event.start_mark, None, flow_style=event.flow_style),
                                   event.anchor, self.expanded))
                self.count(1, event)
                continue
            else:  # the end of the innermost list or map
                done = stack.pop()
                node, height = done.node, done.height + 1
                node.end_mark = event.end_mark
                if done.anchor is not None:
                    self.anchors[done.anchor] = (node, self.expanded - done.start, height)
            if not stack:
                return node
            parent = stack[-1]
            parent.height = max(parent.height, height)
            if not isinstance(parent.node, MappingNode):
                parent.node.value.append(node)
            elif parent.key is None:
                parent.key = node
            else:
                parent.node.value.append((parent.key, node))
                parent.key = None

    def tag(self, kind: type, event: Any) -> str:
        if event.tag is None or event.tag == "!":
            return self.loader.resolve(kind, getattr(event, "value", None), event.implicit)
        return event.tag

    def new_anchor(self, event: Any) -> None:
        from yaml.composer import ComposerError

        if event.anchor in self.anchors:
            first = self.anchors[event.anchor]
            raise ComposerError(f"found duplicate anchor {event.anchor!r}; first occurrence", first[0].start_mark if first else None,
                                "second occurrence", event.start_mark)
        self.anchors[event.anchor] = None

    def alias(self, event: Any, depth: int) -> tuple[Node, int]:
        from yaml.composer import ComposerError

        if event.anchor not in self.anchors:
            raise ComposerError(None, None, f"found undefined alias {event.anchor!r}", event.start_mark)
        target = self.anchors[event.anchor]
        if target is None:
            raise YamlLimitError("max_nodes", f"YAML alias *{event.anchor} sits inside the value it names (an endless structure)",
                                 _line(event.start_mark))
        self.aliases += 1
        if self.aliases > self.limits.max_aliases:
            raise YamlLimitError("max_aliases", f"YAML document uses more than {self.limits.max_aliases} aliases", _line(event.start_mark))
        node, size, height = target
        if depth + height > self.limits.max_depth:
            raise self.too_deep(event.start_mark)
        self.count(size, event)
        return node, height

    def count(self, size: int, event: Any) -> None:
        self.expanded += size
        if self.expanded > self.limits.max_nodes:
            raise YamlLimitError("max_nodes", f"YAML document holds more than {self.limits.max_nodes:,} values once its aliases "
                                              f"are expanded", _line(event.start_mark))

    def too_deep(self, mark: Any) -> YamlLimitError:
        return YamlLimitError("max_depth", f"YAML document nests lists and maps deeper than {self.limits.max_depth} levels",
                              _line(mark))


def _line(mark: Any) -> int | None:
    return mark.line + 1 if mark is not None else None


def reason(exc: Exception) -> str:
    """The parser's reason for a yaml.YAMLError, for a message: its problem and, where it says
    more, its context ("did not find expected ',' or ']' (while parsing a flow sequence that starts
    at line 1)"); the line of the problem itself is the caller's to say."""
    problem, context = getattr(exc, "problem", None), getattr(exc, "context", None)
    if not problem:
        return " ".join(str(exc).split())
    if not context:
        return problem
    if not context.startswith("while "):  # "expected a single document in the stream", "but found another document"
        return f"{context}, {problem}"
    start, at = getattr(exc, "context_mark", None), getattr(exc, "problem_mark", None)
    where = f" that starts at line {start.line + 1}" if start is not None and (at is None or start.line != at.line) else ""
    return f"{problem} ({context}{where})"


@functools.cache
def _json_string() -> Any:
    """A JSON string literal, escapes included (compiled on first use)."""
    import re

    return re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def load_json(source: str | bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """A JSON document as Python data, within a size and a nesting limit checked before parsing
    (a 100,000-deep array is refused after one scan, not by a RecursionError). Errors:
    `YamlLimitError` for a limit, ValueError (json's, or UnicodeDecodeError) for malformed JSON."""
    import json
    import re
    from itertools import accumulate

    text = _text(source, max_bytes)
    brackets = re.sub(r"[^\[\]{}]", "", _json_string().sub("", text))
    if brackets and max(accumulate(1 if char in "[{" else -1 for char in brackets)) > max_depth:
        raise YamlLimitError("max_depth", f"JSON document nests arrays and objects deeper than {max_depth} levels")
    return json.loads(text)


def read_file(path: str | os.PathLike[str], max_bytes: int = MAX_BYTES) -> bytes:
    """A file's bytes, refused (YamlLimitError) after reading at most `max_bytes` + 1 of them:
    a hostile file costs no more memory than a parse would accept."""
    with open(path, "rb") as file:
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise YamlLimitError("max_bytes", f"{os.fspath(path)} is larger than the limit of {max_bytes:,} bytes; it was not read")
    return data
