"""`dlgit continue`, `dlgit abort`, `dlgit undo` and `dlgit log`: the same for every flow."""

from __future__ import annotations

import json

from dlgit.flows import state
from dlgit.flows.runner import FlowRunner
from dlgit.git import Git, require_version
from dlgit.shell import escape


def _runner() -> FlowRunner:
    require_version()
    return FlowRunner(Git.open())


def resume() -> int:
    return _runner().resume()


def abort() -> int:
    return _runner().abort()


def undo() -> int:
    return _runner().undo()


def log(output_format: str) -> int:
    entries = state.read_log(Git.open())
    if output_format == "json":
        for entry in entries:
            print(json.dumps(entry, ensure_ascii=False))
        return 0
    if not entries:
        print("dlgit log: no flow has run here yet.")
    for entry in entries:
        print(escape(f"{entry.get('ended') or entry.get('started')}  {entry.get('status'):<9} {entry.get('name')}: {entry.get('title')}"))
        before, after = entry.get("before") or {}, entry.get("after") or {}
        for ref, old in (before.get("refs") or {}).items():
            new = (after.get("refs") or {}).get(ref)
            if new != old:
                print(escape(f"    {ref}: {(old or '(none)')[:12]} -> {(new or '(none)')[:12]}"))
    return 0
