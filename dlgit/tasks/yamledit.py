"""Edits of a task's config.yaml that change one value's text and nothing else of the file.

`apply_overrides(text, ["lr=0.01", "optimizer.momentum=0.9"])` is what `dlgit start-task --set`
writes; `set_key(text, "RESUME", path)` and `set_key(text, "DEBUG", True)` serve `--resume` and
debug branches; `desc_slug(overrides)` names a task branch after its overrides (`lr0.01-bs64`).

How a value is edited: the file is parsed (bounded, by `dlgit.safeyaml`) only to find where each
value sits; the new value's text replaces the old one's and every other byte is kept — comments,
blank lines, key order, indentation, alignment, quoting, anchors, line endings. (ruamel.yaml's
round trip re-emits the whole file: it turns `~` into an empty value, drops the alignment of
`lr:    0.1`, re-indents 4-space blocks and moves comments, so it is not used.)

- A value that spans lines (a block map, list or text) is replaced whole by a one-line value after
  its key; the comments inside it go with it, a comment on the key's line stays.
- A value carrying an anchor (`&base`), and a path through an alias (`*base`), are refused: the
  edit would break or silently change the values that repeat it. Keys inside an anchored map can
  be set (their aliases then see the new value, as YAML means).
- `add=True` appends an unknown key at the end of its map (block or flow style), creating the
  missing maps, indented as the file indents.

How VALUE is typed: as YAML 1.1 reads it (PyYAML, what task scripts load configs with: 0.01 float,
true/yes bool, null/~ None, [1, 2] list, {a: 1} map, '0.1' string), except that exponent forms
such as 1e-3 are floats (YAML 1.2 and Python say so; PyYAML would read a string). It is written
back in a form PyYAML reads as that same value (1e-3 -> 0.001, yes -> true, a string that would
read as something else is quoted). Refused: an empty VALUE (write `null` or `''`), VALUE that is
not YAML, a block map or list (`a: b`, `- x`: quote it for text), text around the value (`x # y`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from dlgit.model import slugify

NAME = r"\w[\w-]*"  # one part of a dotted KEY: letters (any script), digits, '_', '-'
MAX_SLUG = 40
_EXPONENT_FLOAT = r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+"
_VALUE_LIMITS = {"max_bytes": 64 * 1024, "max_depth": 16, "max_aliases": 0, "max_nodes": 10_000}


class EditError(ValueError):
    """An override that cannot be applied; the message is one sentence, for a one-paragraph error."""


class UnknownKey(EditError):
    """`key` (dotted) is not in the file; `known` are the keys of the map it would belong to."""

    def __init__(self, key: str, known: tuple[str, ...]) -> None:
        self.key = key
        self.known = known
        parent = key.rpartition(".")[0]
        where = f"the keys of '{parent}'" if parent else "the top-level keys"
        merged = " (and those its '<<' merge brings)" if "<<" in known else ""
        listed = ", ".join(k for k in known if k != "<<") or "none"
        super().__init__(f"unknown key '{key}'; {where} are: {listed}{merged}")


def apply_overrides(text: str, overrides: Iterable[str], *, add: bool = False) -> str:
    """`text` with every KEY=VALUE of `overrides` applied in order (a later one wins)."""
    for item in overrides:
        path, value = parse_override(item)
        text = _set(text, path, value, add)
    return text


def set_key(text: str, key: str, value: object, *, add: bool = True) -> str:
    """`text` with `key` (dotted) set to the Python value `value` (str, bool, None, a number, or
    lists and maps of them), added at the end of its map when missing unless `add` is False."""
    return _set(text, _key_path(key), value, add)


def parse_override(item: str) -> tuple[tuple[str, ...], object]:
    """KEY=VALUE -> (key parts, typed value)."""
    key, equals, value = item.partition("=")
    if not equals:
        raise EditError(f"'{item}' is not KEY=VALUE")
    return _key_path(key), typed(value, key)


def typed(value: str, key: str = "VALUE") -> object:
    """VALUE as a Python value (see the module's notes)."""
    import yaml

    from dlgit import safeyaml

    if not value.strip():
        raise EditError(f"'{key}=' has no value; write {key}=null for null or {key}='' for an empty string")
    try:
        node = safeyaml.compose(value, **_VALUE_LIMITS)
        data = safeyaml.load(value, **_VALUE_LIMITS)
    except (yaml.YAMLError, safeyaml.YamlLimitError) as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise EditError(f"the value of '{key}' is not valid YAML ({problem}): {value!r}; quote it to mean text") from None
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and not node.flow_style:
        kind = "map" if isinstance(node, yaml.MappingNode) else "list"
        raise EditError(f"the value of '{key}', {value!r}, reads as a YAML block {kind}; "
                        f"quote it to mean text ({key}='{value}') or write it in brackets ({{a: b}}, [x, y])")
    if node is not None and value[:node.start_mark.index].strip() + value[node.end_mark.index:].strip():
        raise EditError(f"the value of '{key}', {value!r}, has text around its value (a ' #' starts a comment); quote it to mean text")
    if isinstance(data, str) and not node.style and re.fullmatch(_EXPONENT_FLOAT, data):  # plain: None or '' (libyaml)
        return float(data)
    return data


def desc_slug(overrides: Iterable[str], default: str = "run") -> str:
    """A task branch's <desc> from its overrides: `lr=0.01`, `bs=64` -> `lr0.01-bs64`; a nested
    key names itself by its last part (`optimizer.lr=0.01` -> `lr0.01`). At most MAX_SLUG
    characters, whole overrides first; `default` when nothing is left."""
    slug = ""
    for item in overrides:
        key, _, value = item.partition("=")
        part = slugify(key.rpartition(".")[2] + value)
        if part and len(slug) + len(part) + 1 > MAX_SLUG:
            slug = slug or part[:MAX_SLUG]
            break
        slug = f"{slug}-{part}" if slug and part else slug or part
    while slug.endswith((".", "-", ".lock")):  # a cut may leave them; a branch name may not end so
        slug = slug.removesuffix(".lock").rstrip(".-")
    return slug or default


def _key_path(key: str) -> tuple[str, ...]:
    if not key:
        raise EditError("an override has an empty KEY (write KEY=VALUE)")
    parts = tuple(key.split("."))
    if not all(re.fullmatch(NAME, part) for part in parts):
        raise EditError(f"'{key}' is not a KEY: write names of letters, digits, '_' and '-', joined by '.' for nested maps")
    return parts


# --- where values sit in the text --------------------------------------------------------------


class _Node(NamedTuple):
    """A node of the document as it sits in the text: `start`-`end` is its text (anchor and tag
    included; a block collection ends where its last value ends, a block text before its last
    line break)."""

    kind: str  # "map", "list", "scalar", "alias"
    start: int
    end: int
    flow: bool  # its text is one span that a one-line value can replace (any scalar but a block text, a flow map or list, an alias)
    anchor: str | None = None
    text: str | None = None  # a scalar's value (to match keys)
    entries: tuple[tuple[_Node, _Node], ...] = ()  # a map's (key, value) pairs


def _located(text: str) -> _Node | None:
    """The root node of `text` (None: an empty document); EditError when it is not YAML within dlgit's limits."""
    import yaml

    from dlgit import safeyaml

    try:
        safeyaml.compose(text, pure=True)  # limits, one document, valid YAML: then the same parser's events are safe to walk
        events = yaml.parse(text, Loader=yaml.SafeLoader)  # the pure parser: marks are offsets into `text`
        next(events)  # stream start
        if isinstance(next(events), yaml.StreamEndEvent):  # else: a document starts
            return None
        root = _build(next(events), events, text)
        return None if root.kind == "scalar" and root.start == root.end else root  # `---` and nothing: an empty document
    except (yaml.YAMLError, safeyaml.YamlLimitError) as exc:
        raise EditError(f"config.yaml is not valid YAML: {' '.join(str(exc).split())}") from None


def _build(event: Any, events: Iterator[Any], text: str) -> _Node:
    import yaml

    start, anchor = event.start_mark.index, getattr(event, "anchor", None)
    if isinstance(event, yaml.AliasEvent):
        return _Node("alias", start, event.end_mark.index, True)
    if isinstance(event, yaml.ScalarEvent):
        block = event.style in ("|", ">")
        end = len(text[:event.end_mark.index].rstrip("\r\n")) if block else event.end_mark.index
        return _Node("scalar", start, end, not block, anchor, event.value)
    children = []
    while not isinstance(child := next(events), yaml.CollectionEndEvent):
        children.append(_build(child, events, text))
    flow = bool(event.flow_style)
    end = event.end_mark.index if flow else children[-1].end  # a block map or list has at least one entry
    if isinstance(event, yaml.SequenceStartEvent):
        return _Node("list", start, end, flow, anchor)
    return _Node("map", start, end, flow, anchor, entries=tuple(zip(children[::2], children[1::2], strict=True)))


# --- the edit ----------------------------------------------------------------------------------


def _set(text: str, path: tuple[str, ...], value: object, add: bool) -> str:
    edited = _edit(text, _located(text), path, value, add)
    _verify(text, edited, path, value)
    return edited


def _edit(text: str, root: _Node | None, path: tuple[str, ...], value: object, add: bool) -> str:
    if root is None:  # an empty file
        if not add:
            raise UnknownKey(path[0], ())
        return _append_to_file(text, path, value)
    node, key = root, None
    for depth, part in enumerate(path):
        here = ".".join(path[:depth])
        if node.kind == "alias":
            raise EditError(f"'{here}' is an alias (*) of a value defined elsewhere in the file; set that value, or replace '{here}' whole")
        if node.kind != "map":
            raise EditError(f"'{here or 'the file'}' is a {'list' if node.kind == 'list' else 'single value'}, not a map: "
                            f"'{'.'.join(path[:depth + 1])}' cannot be set inside it")
        found = [(k, v) for k, v in node.entries if k.kind == "scalar" and k.text == part]
        if len(found) > 1:
            raise EditError(f"'{'.'.join(path[:depth + 1])}' appears {len(found)} times in its map; remove the duplicates first")
        if not found:
            if not add:
                raise UnknownKey(".".join(path[:depth + 1]), tuple(k.text for k, _ in node.entries if k.text is not None))
            return _append_to_map(text, root, node, path[depth:], value)
        key, node = found[0]
    assert key is not None  # a path has at least one part
    return _replace(text, key, node, value, ".".join(path))


def _verify(text: str, edited: str, path: tuple[str, ...], value: object) -> None:
    """The edited file must read as the old one with that one value set (aliases and merges
    following it, as YAML means): a safety net for layouts the splice does not foresee."""
    import yaml

    from dlgit import safeyaml

    root = safeyaml.compose(text, pure=True)
    if not isinstance(root, yaml.MappingNode):  # an empty document (the edit refuses any other)
        root = yaml.MappingNode("tag:yaml.org,2002:map", [])
    node = root
    for depth, part in enumerate(path):
        pairs = node.value
        index = next((i for i, (k, _) in enumerate(pairs) if isinstance(k, yaml.ScalarNode) and k.value == part), None)
        if depth == len(path) - 1:
            child = safeyaml.compose(render(value))
        else:
            child = pairs[index][1] if index is not None else yaml.MappingNode("tag:yaml.org,2002:map", [])
        if index is None:
            pairs.append((yaml.ScalarNode("tag:yaml.org,2002:str", part), child))
        else:
            pairs[index] = (pairs[index][0], child)
        node = child
    loader = yaml.SafeLoader("")
    try:
        expected = yaml.safe_dump(loader.construct_document(root), sort_keys=False)
    finally:
        loader.dispose()
    try:
        actual = yaml.safe_dump(safeyaml.load(edited, pure=True), sort_keys=False)
    except (yaml.YAMLError, safeyaml.YamlLimitError):
        actual = None
    if actual != expected:
        raise EditError(f"'{'.'.join(path)}' cannot be set without changing other values of the file (its layout is unusual); "
                        "edit it by hand")


def _replace(text: str, key: _Node, node: _Node, value: object, dotted: str) -> str:
    if node.anchor is not None:
        raise EditError(f"the value of '{dotted}' carries the anchor &{node.anchor}, which aliases (*{node.anchor}) may repeat; "
                        "edit the file by hand")
    rendered = render(value)
    if node.flow:
        return text[:node.start] + (" " if node.start == node.end else "") + rendered + text[node.end:]
    colon = text.index(":", key.end) + 1  # a block value: the new one goes on the key's line
    line_end = _line_end(text, colon)
    rest = text[colon:line_end]
    comment = rest if node.start > line_end and rest.strip() else ""  # only a comment can sit there then
    return text[:colon] + " " + rendered + comment + text[_line_end(text, node.end):]


def _append_to_map(text: str, root: _Node, node: _Node, path: tuple[str, ...], value: object) -> str:
    if node.flow:
        entry = _flow_entry(path, value)
        if node.entries:
            at = node.entries[-1][1].end
            return text[:at] + ", " + entry + text[at:]
        at = text.index("{", node.start) + 1
        return text[:at] + entry + text[at:]
    first_key = node.entries[0][0]
    indent = first_key.start - _line_start(text, first_key.start)
    at = _line_end(text, node.end)
    newline = _newline(text)
    lines = _block_entry(path, value, indent, _indent_step(text, root))
    if at == len(text):
        return text + newline + newline.join(lines) + newline
    at += 2 if text.startswith("\r\n", at) else 1
    return text[:at] + newline.join(lines) + newline + text[at:]


def _append_to_file(text: str, path: tuple[str, ...], value: object) -> str:
    newline = _newline(text)
    lead = newline if text and not text.endswith("\n") else ""
    return text + lead + newline.join(_block_entry(path, value, 0, 2)) + newline


def _block_entry(path: tuple[str, ...], value: object, indent: int, step: int) -> list[str]:
    lines = [" " * (indent + step * depth) + render(part) + ":" for depth, part in enumerate(path)]
    lines[-1] += " " + render(value)
    return lines


def _flow_entry(path: tuple[str, ...], value: object) -> str:
    inner = f"{render(path[-1])}: {render(value)}"
    for part in reversed(path[:-1]):
        inner = f"{render(part)}: {{{inner}}}"
    return inner


def _indent_step(text: str, root: _Node) -> int:
    """How far the file indents a nested block map under its key (2 when it has none)."""
    stack = [root]
    while stack:
        node = stack.pop()
        for key, child in node.entries:
            if child.kind == "map" and not child.flow and child.entries:
                first = child.entries[0][0].start
                return first - _line_start(text, first) - (key.start - _line_start(text, key.start))
            stack.append(child)
    return 2


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _line_end(text: str, index: int) -> int:
    """The index of the line break (\\n or \\r\\n) that ends the line holding `index`, or the text's end."""
    end = text.find("\n", index)
    if end == -1:
        return len(text)
    return end - 1 if end > index and text[end - 1] == "\r" else end


def _newline(text: str) -> str:
    end = text.find("\n")
    return "\r\n" if end > 0 and text[end - 1] == "\r" else "\n"


def render(value: object) -> str:
    """`value` as one line of YAML that PyYAML reads back as it, valid inside a flow map or list
    too: a string with a line break in double quotes, one that YAML 1.2 would read as a float
    (`1e-3`) in single quotes."""
    import yaml

    text = yaml.dump([value], Dumper=_dumper(), default_flow_style=True, allow_unicode=True, width=float("inf"), sort_keys=False)
    return text.strip()[1:-1]


@functools.cache
def _dumper() -> type:
    import yaml

    class Dumper(yaml.SafeDumper):
        def represent_str(self, data: str) -> Any:
            style = '"' if any(ch in data for ch in "\r\n\x85\u2028\u2029") else "'" if re.fullmatch(_EXPONENT_FLOAT, data) else None
            return self.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    Dumper.add_representer(str, Dumper.represent_str)
    return Dumper


def _kind(value: object) -> str:
    """A value's type as a config reader sees it (an int and a float are both numbers)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    return "a value"


def retyped(text: str, overrides: Iterable[str]) -> list[str]:
    """The overrides that would change the type of the value they set (`epochs=ten` on an int), as
    sentences; setting a null, or setting one to null, is no change of type."""
    import yaml

    from dlgit import safeyaml

    try:
        current = safeyaml.load(text)
    except (yaml.YAMLError, ValueError):  # the edit itself says what is wrong with the file
        return []
    found = []
    for item in overrides:
        path, value = parse_override(item)
        old: Any = current
        for part in path:
            old = old.get(part) if isinstance(old, dict) else None
        if old is not None and value is not None and _kind(old) != _kind(value):
            found.append(f"'{'.'.join(path)}' is {_kind(old)} ({safe_repr(old)}), and {item!r} makes it {_kind(value)}")
    return found


def safe_repr(value: object) -> str:
    from dlgit.safeyaml import shown

    return shown(value, 40)
