"""`dlgit report` over real git, with the real typst package and matplotlib: the summary CSVs and
JSON, the figures, the PDF's text, determinism, the incremental cache, hostile task files, figure
scripts that fail, a dlgit without the report extra, and --commit."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEMPLATE_CONFIG, Repo

from dlgit.tasks.report_files import starter_files

pypdf = pytest.importorskip("pypdf")

TASK_A = "task-0.1.0-20260101T000000-lr0.02"
TASK_B = "task-0.1.0-20260102T000000-lr0.5"
SWEEP = "task-0.1.0-20260103T000000-grid"
RECORD = "commit: {commit}\nexit_code: {code}\nduration_s: 1.5\ninterrupted: false\n"


def loss_csv(lr: float, rows: int = 5) -> str:
    return "epoch,loss\n" + "".join(f"{epoch},{round(1 / (1 + epoch * lr), 4)}\n" for epoch in range(rows))


def add_task(repo: Repo, name: str, files: dict[str, str | bytes], message: str | None = None) -> None:
    """A task folder committed on dev as a merged task would be (hooks skipped: the layout is under test, not the policy)."""
    for path, content in files.items():
        repo.write(f"tasks/{name}/{path}", content)
    repo.commit(message or f"task: merge {name}", f"tasks/{name}", extra=("--no-verify",))


def task_files(lr: float, metrics: dict[str, object], code: int = 0) -> dict[str, str | bytes]:
    return {"config.yaml": TEMPLATE_CONFIG.replace("lr: 0.01", f"lr: {lr}"), "metrics.json": json.dumps(metrics),
            "results/loss.csv": loss_csv(lr), "runs/20260101T000001.yaml": RECORD.format(commit="c0ffee" * 6 + "c0ff", code=code)}


@pytest.fixture
def reporting(repo: Repo) -> Repo:
    """dev with the report's starters, two tasks and a sweep of two sub-tasks (one failed)."""
    repo.git("switch", "-q", "dev")
    for path, content in starter_files("tasks/main").items():
        repo.write(path, content)
    repo.commit("docs: the report's starters", "reports", "tasks/main", extra=("--no-verify",))
    add_task(repo, TASK_A, task_files(0.02, {"acc": 0.8125, "loss": {"val": 0.5}}))
    add_task(repo, TASK_B, task_files(0.5, {"acc": 0.75, "loss": {"val": 0.25}}))
    sweep = {"config.yaml": TEMPLATE_CONFIG}
    for sub, lr, code in (("lr=0.1", 0.1, 0), ("lr=0.3", 0.3, 1)):
        sweep.update({f"subtasks/{sub}/{path}": content for path, content in task_files(lr, {"acc": lr}, code).items()})
    add_task(repo, SWEEP, sweep)
    return repo


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(str(path)).pages)


def digests(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted((root / "reports").rglob("*")) if path.is_file()}


def test_report_collects_every_task_and_sub_task_draws_and_compiles(reporting: Repo) -> None:
    proc = reporting.dlgit("report")
    assert proc.returncode == 0, proc.stderr
    assert "3 task(s) and 2 sub-task(s)" in proc.stdout and "reports/report.pdf" in proc.stdout
    summary = reporting.path / "reports/summary"
    table = rows(summary / "tasks.csv")
    assert [(row["task"], row["subtask"], row["state"]) for row in table] == [
        (TASK_A, "", "merged"), (TASK_B, "", "merged"), (SWEEP, "", "merged"), (SWEEP, "lr=0.1", "done"), (SWEEP, "lr=0.3", "failed")]
    assert table[0]["params.lr"] == "0.02" and table[0]["metrics.loss.val"] == "0.5" and table[0]["version"] == "0.1.0"
    assert table[0]["commit"] == "c0ffee" * 6 + "c0ff" and table[2]["params.lr"] == ""
    document = json.loads((summary / "tasks.json").read_text())
    assert document["tasks"][0]["metrics"] == {"acc": 0.8125, "loss.val": 0.5}  # numbers stay numbers
    stacked = rows(summary / "loss.csv")
    assert list(stacked[0]) == ["task", "subtask", "epoch", "loss"] and len(stacked) == 4 * 5
    assert {(row["task"], row["subtask"]) for row in stacked} == {(TASK_A, ""), (TASK_B, ""), (SWEEP, "lr=0.1"), (SWEEP, "lr=0.3")}
    assert (summary / "loss.svg").read_text().startswith("<?xml")
    assert json.loads((summary / "figures.json").read_text()) == ["loss.svg"]
    text = pdf_text(reporting.path / "reports/report.pdf")
    for value in ("0.8125", "0.75", TASK_A[:12], "lr=0.3", "failed"):
        assert value in text, value


def test_two_builds_are_byte_identical_and_a_second_run_writes_nothing(reporting: Repo) -> None:
    assert reporting.dlgit("report").returncode == 0
    first = digests(reporting.path)
    again = reporting.dlgit("report")
    assert "nothing changed since the last report" in again.stdout
    assert digests(reporting.path) == first
    for path in (reporting.path / "reports/summary").iterdir():
        path.unlink()
    (reporting.path / "reports/report.pdf").unlink()
    for cache in (reporting.path / ".git/dlgit").glob("report*.json"):
        cache.unlink()
    assert reporting.dlgit("report").returncode == 0
    assert digests(reporting.path) == first


def test_a_changed_metric_changes_only_its_row(reporting: Repo) -> None:
    assert reporting.dlgit("report", "--collect-only").returncode == 0
    before = (reporting.path / "reports/summary/tasks.csv").read_text().splitlines()
    reporting.write(f"tasks/{TASK_B}/metrics.json", json.dumps({"acc": 0.5, "loss": {"val": 0.25}}))
    reporting.commit("task: mend a metric", f"tasks/{TASK_B}", extra=("--no-verify",))
    proc = reporting.dlgit("report", "--collect-only")
    assert "(1 read anew)" in proc.stdout
    after = (reporting.path / "reports/summary/tasks.csv").read_text().splitlines()
    assert [i for i, (old, new) in enumerate(zip(before, after, strict=True)) if old != new] == [2]


def test_hostile_task_files_are_notes_on_their_task(reporting: Repo) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                                                           for p, c in zip("abcdefg", "bcdefgh", strict=True))
    add_task(reporting, "task-0.1.0-20260104T000000-bomb", {"config.yaml": TEMPLATE_CONFIG, "metrics.yaml": bomb,
                                                              "results/loss.csv": b"epoch,loss\n1,\xff\xfe\n"})
    add_task(reporting, "task-0.1.0-20260105T000000-list", {"config.yaml": TEMPLATE_CONFIG, "metrics.json": "[1, 2]",
                                                              "results/big.csv": "x\n" + "1\n" * (9 * 1024 * 1024)})
    add_task(reporting, "task-0.1.0-20260106T000000-deep", {"config.yaml": TEMPLATE_CONFIG, "metrics.json": "[" * 100_000})
    link = reporting.path / "tasks/task-0.1.0-20260107T000000-link"
    link.mkdir(parents=True)
    (link / "config.yaml").write_text(TEMPLATE_CONFIG)
    os.symlink(str(Path.home() / "secret.json"), link / "metrics.json")
    (Path.home() / "secret.json").write_text('{"token": "hunter2"}')
    reporting.commit("task: merge link", str(link.relative_to(reporting.path)), extra=("--no-verify",))
    proc = reporting.dlgit("report", "--collect-only")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for note in ("bomb: metrics.yaml: not readable YAML", "bomb: results/loss.csv is not UTF-8", "list: metrics.json holds list",
                 "big.csv is 18,874,370 bytes, over the 16,777,216-byte limit",
                 "deep: metrics.json: not readable JSON (JSON document nests arrays and objects deeper than 32 levels)",
                 "link: metrics.json is a symbolic link: not followed"):
        assert note in proc.stderr, note
    summary = (reporting.path / "reports/summary/tasks.json").read_text()
    assert "hunter2" not in summary and "7 task(s)" in proc.stdout


def test_a_failing_figure_script_names_itself_and_the_others_are_drawn(reporting: Repo) -> None:
    reporting.write("reports/figures/broken.py", "raise RuntimeError('no such column: accuracy')\n")
    proc = reporting.dlgit("report")
    assert proc.returncode == 1
    assert "reports/figures/broken.py failed: exit 1" in proc.stderr and "no such column: accuracy" in proc.stderr
    assert (reporting.path / "reports/summary/loss.svg").is_file() and (reporting.path / "reports/report.pdf").is_file()


def test_unmerged_task_branches_with_branches(reporting: Repo) -> None:
    reporting.git("switch", "-q", "-c", "task-0.1.0-20260108T000000-open", "main")
    add_task(reporting, "task-0.1.0-20260108T000000-open", task_files(0.9, {"acc": 0.9}), message="task: start open")
    reporting.git("switch", "-q", "dev")
    assert "open" not in (reporting.dlgit("report", "--collect-only") and
                          (reporting.path / "reports/summary/tasks.csv").read_text())
    assert reporting.dlgit("report", "--collect-only", "--branches").returncode == 0
    table = rows(reporting.path / "reports/summary/tasks.csv")
    assert ("task-0.1.0-20260108T000000-open", "open") in {(row["task"], row["state"]) for row in table}


def test_commit_on_dev_only(reporting: Repo) -> None:
    reporting.install_direct_hooks()
    proc = reporting.dlgit("report", "--collect-only", "--commit")
    assert proc.returncode == 0, proc.stderr
    subject = reporting.git("log", "-1", "--format=%s").stdout.strip()
    assert subject.startswith("docs: task report at ")
    assert reporting.git("show", "--name-only", "--format=", "HEAD").stdout.split() == [
        "reports/summary/loss.csv", "reports/summary/tasks.csv", "reports/summary/tasks.json"]
    assert "nothing to commit" in reporting.dlgit("report", "--collect-only", "--commit").stdout
    reporting.git("switch", "-q", "main")
    refused = reporting.dlgit("report", "--commit")
    assert refused.returncode == 2 and "git switch dev && dlgit report --commit" in refused.stderr


def test_init_report_writes_the_starters(bare_repo: Repo) -> None:
    assert bare_repo.dlgit("init", "--report").returncode == 0
    for path in starter_files("tasks/main"):
        assert (bare_repo.path / path).is_file(), path
    assert bare_repo.git("status", "--porcelain").stdout == ""


def test_the_results_helper_writes_the_convention(tmp_path: Path) -> None:
    (tmp_path / "report_data.py").write_text(starter_files("tasks/main")["tasks/main/report_data.py"])
    script = "from report_data import Series, save_metrics\ns = Series('loss', ['epoch', 'loss'])\ns.add(epoch=1, loss=0.5)\n" \
             "save_metrics({'loss': 0.5})\n"
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True)
    assert (tmp_path / "results/loss.csv").read_text() == "epoch,loss\n1,0.5\n"
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"loss": 0.5}


def python_without_the_extra(tmp_path: Path) -> Path:
    """A venv that has dlgit, click and PyYAML (linked from this one) but not matplotlib nor typst."""
    import click
    import yaml

    import dlgit

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    lib = tmp_path / "lib"
    lib.mkdir()
    for module in (click, yaml, dlgit):
        (lib / Path(module.__file__).parent.name).symlink_to(Path(module.__file__).parent)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "deps.pth").write_text(f"{lib}\n")
    return venv / "bin" / "python"


def test_without_the_extra_the_csvs_are_written_and_the_install_line_printed(reporting: Repo, tmp_path: Path) -> None:
    python = python_without_the_extra(tmp_path)
    def report(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(python), "-m", "dlgit", "report", *args], cwd=reporting.path, capture_output=True, text=True,
                              check=False)
    proc = report()
    assert proc.returncode == 0, proc.stderr
    assert "figures and the PDF need matplotlib, typst" in proc.stderr and "-m pip install 'dlgit[report]" in proc.stderr
    assert (reporting.path / "reports/summary/tasks.csv").is_file() and not (reporting.path / "reports/report.pdf").exists()
    assert report("--require-pdf").returncode == 2
