"""`dlgit demo` walks through the model in a throw-away repository and doubles as a smoke test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from dlgit import demo

BLOCKED_RULES = ("main-protected", "commit-message", "task-scope", "large-file")


def test_demo_runs_every_step_and_cleans_up(tmp_path: Path) -> None:
    script = shutil.which("dlgit")
    command = [script, "demo"] if script else [sys.executable, "-m", "dlgit", "demo"]
    env = {**os.environ, "TMPDIR": str(tmp_path), "NO_COLOR": "1"}
    env.pop(demo.KEEP_VARIABLE, None)
    proc = subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for rule_id in BLOCKED_RULES:
        assert f"✗ {rule_id}" in proc.stdout
        assert f"-> blocked by {rule_id}, as the model says" in proc.stdout
    assert "$ git commit -q -m 'feat: a deeper net'" in proc.stdout
    assert "task: merge task-0.1.0-" in proc.stdout
    assert "dlgit explain RULE" in proc.stdout
    assert "\033[" not in proc.stdout  # no colour off a TTY
    assert list(tmp_path.iterdir()) == []  # the throw-away repository is gone


def test_demo_fails_loudly_and_keeps_the_repo_when_a_step_misbehaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(demo, "hook_script", lambda name: "#!/bin/sh\nexit 0\n")  # hooks that allow everything
    before = dict(os.environ)
    assert demo.demo() == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "should have been blocked by main-protected" in err
    kept = list(tmp_path.glob("dlgit-demo-*"))
    assert len(kept) == 1 and str(kept[0]) in err
    assert dict(os.environ) == before  # the isolated identity does not leak out
