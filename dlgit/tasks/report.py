"""`dlgit report`: every task's results collected, summary figures drawn from the raw data, one Typst
document compiled (seed §3, §11–§14).

    reports/summary/tasks.csv, tasks.json   one row per task and sub-task (params that differ from
                                            the template, metrics; numbers stay numbers in JSON)
    reports/summary/<name>.csv              every task's results/<name>.csv stacked, with task and
                                            subtask columns
    reports/figures/<name>.py               the user's figure scripts: each writes reports/summary/<name>.svg
    reports/report.typ -> reports/report.pdf  compiled with the typst package (the repository root as its root)

Deterministic: rows sorted, no timestamps (the PDF's date is that of the last commit changing the
tasks folder), fixed hash salts, no system fonts. Incremental: task rows are cached by their folder's
tree id, each stage by a digest of its inputs; a run that finds nothing changed writes nothing.
Collecting needs only PyYAML and git; figures and the PDF need the `report` extra (matplotlib, typst).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dlgit import config
from dlgit.config import Settings
from dlgit.errors import UsageError
from dlgit.git import Git
from dlgit.model import Kind, parse_branch
from dlgit.shell import escape, quote
from dlgit.tasks import results
from dlgit.tasks.results import Collected, Source

REPORTS = "reports"
SUMMARY = f"{REPORTS}/summary"
FIGURES = f"{REPORTS}/figures"
DOCUMENT = f"{REPORTS}/report.typ"
PDF = f"{REPORTS}/report.pdf"
FIGURE_LIST = "figures.json"
FIXED_COLUMNS = ("task", "subtask", "version", "time", "desc", "state", "commit")
FIGURE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
RESERVED = {"tasks", "figures"}
SCRIPT_TIMEOUT_S = 600
CACHE_SCHEMA = 1
EXTRA_MODULES = ("matplotlib", "typst")


def report(collect_only: bool = False, no_pdf: bool = False, require_pdf: bool = False, branches: bool = False,
           commit: bool = False, cwd: Path | str | None = None) -> int:
    started = time.monotonic()
    repo = Git.open(cwd)
    if repo.root is None:
        raise UsageError("dlgit report writes reports/ into a work tree; run it in one (not in a bare repository).")
    settings = config.load(repo.root)
    branch = repo.current_branch()
    if commit:
        _refuse_commit_here(branch, settings)
    head = repo.rev("HEAD")
    if head is None:
        raise UsageError("this repository has no commit yet: there is nothing to report.")
    build = _Build(repo, repo.root, settings, head, branch, branches)
    code = build.run(collect_only, no_pdf, require_pdf)
    print(f"dlgit report: {build.summary()}; {time.monotonic() - started:.2f} s")
    if commit and code == 0:
        return _commit(repo, build.data_commit)
    return code


def _refuse_commit_here(branch: str | None, settings: Settings) -> None:
    kind = parse_branch(branch, settings).kind if branch else None
    if kind not in (Kind.DEV, Kind.FEATURE):
        where = f"on {quote(branch)} ({kind.value if kind else 'unknown kind'})" if branch else "on a detached HEAD"
        raise UsageError(f"the report is documentation: it is committed on {settings.dev} (or a feature branch), not {where}. "
                         f"fix: git switch {quote(settings.dev)} && dlgit report --commit")


def _commit(repo: Git, data_commit: str) -> int:
    from dlgit.git import Runner

    runner = Runner(repo, echo=sys.stdout)
    runner("add", "--", REPORTS)
    if not repo.run("diff", "--cached", "--quiet", "--", REPORTS, check=False).returncode:
        print("dlgit report: the committed report is current: nothing to commit.")
        return 0
    runner("commit", "-q", "-m", f"docs: task report at {data_commit[:12]}", "--", REPORTS)
    return 0


class _Build:
    def __init__(self, repo: Git, root: Path, settings: Settings, head: str, branch: str | None, branches: bool) -> None:
        self.repo, self.root, self.settings, self.branch = repo, root, settings, branch
        self.data_commit = repo.out("rev-list", "-1", head, "--", settings.tasks_dir).strip() or head
        self.sources = results.sources(repo, settings, head, branches)
        self.state_file = repo.common_dir / "dlgit" / "report.json"
        self.state = _load_json(self.state_file)
        self.counts = {"tasks": 0, "subtasks": 0, "read": 0, "figures": 0, "failed": 0, "pages": 0}
        self.stages: list[str] = []
        self.written: list[str] = []

    # --- the three stages ---------------------------------------------------------------------

    def run(self, collect_only: bool, no_pdf: bool, require_pdf: bool) -> int:
        self._collect()
        if collect_only:
            return 0
        missing = [name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None]
        if missing:
            return self._without_extra(missing, require_pdf)
        self._figures()
        code = 1 if self.counts["failed"] else 0
        if not no_pdf:
            code = max(code, self._document(require_pdf))
        self._save_state()
        return code

    def _collect(self) -> None:
        template_blob = self.repo.object_ids([f"{self.data_commit}:{self.settings.template_config}"]).get(
            f"{self.data_commit}:{self.settings.template_config}", "")
        key = _digest(json.dumps([CACHE_SCHEMA, template_blob, self.data_commit, [list(source) for source in self.sources]]))
        if self._current("collect", key):
            self._count(self.state["collect"]["counts"])
            return
        _progress(f"reading {len(self.sources):,} task folder(s)…")
        collected = self._collected(template_blob)
        rows = [row for source in self.sources for row in self._rows(source, collected[_cache_key(source, template_blob)])]
        files = {f"{SUMMARY}/tasks.csv": _tasks_csv(rows), f"{SUMMARY}/tasks.json": _tasks_json(rows, self.data_commit, self.branch)}
        files.update(self._figure_data(collected, template_blob))
        counts = {"tasks": sum(1 for row in rows if not row["subtask"]), "subtasks": sum(1 for row in rows if row["subtask"])}
        self._count(counts)
        self._write_stage("collect", key, files, counts=counts)

    def _figures(self) -> None:
        scripts = sorted((self.root / FIGURES).glob("*.py")) if (self.root / FIGURES).is_dir() else []
        scripts = [script for script in scripts if script.is_file() and not script.is_symlink()]
        inputs = _digest_files([*sorted((self.root / SUMMARY).glob("*.csv")), self.root / SUMMARY / "tasks.json"])
        todo = []
        for script in scripts:
            key = _digest(inputs + _digest_files([script]))
            if not self._current(f"figure:{script.stem}", key):
                todo.append((script, key))
        if todo:
            _progress(f"drawing {len(todo)} figure(s)…")
            with ThreadPoolExecutor(max_workers=max(1, min(len(todo), os.cpu_count() or 1))) as pool:
                for (script, key), error in zip(todo, pool.map(lambda item: self._draw(item[0]), todo), strict=True):
                    if error:
                        self.counts["failed"] += 1
                        print(f"dlgit report: {FIGURES}/{escape(script.name)} failed: {escape(error)}", file=sys.stderr)
                        self.state.pop(f"figure:{script.stem}", None)
                    else:
                        self._write_stage(f"figure:{script.stem}", key, {}, outputs=[f"{SUMMARY}/{script.stem}.svg"])
                        self.stages.append(f"figure:{script.stem}")
        self.counts["figures"] = sum(1 for script in scripts if (self.root / SUMMARY / f"{script.stem}.svg").is_file())
        made = [f"{script.stem}.svg" for script in scripts if (self.root / SUMMARY / f"{script.stem}.svg").is_file()]
        self._write_if_changed(f"{SUMMARY}/{FIGURE_LIST}", json.dumps(made, indent=1) + "\n")

    def _draw(self, script: Path) -> str | None:
        """Run one figure script; the error to show, or None when it wrote its SVG."""
        output = self.root / SUMMARY / f"{script.stem}.svg"
        env = {**os.environ, "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg", "SOURCE_DATE_EPOCH": str(self._timestamp()),
               "DLGIT_SUMMARY": str(self.root / SUMMARY), "DLGIT_FIGURE": str(output)}
        try:
            proc = subprocess.run([sys.executable, str(script), str(self.root / SUMMARY), str(output)], cwd=self.root, env=env,
                                  capture_output=True, timeout=SCRIPT_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return f"still running after {SCRIPT_TIMEOUT_S} s: stopped"
        if proc.returncode != 0:
            last = [line for line in proc.stderr.decode("utf-8", "replace").splitlines() if line.strip()][-3:]
            return f"exit {proc.returncode}: " + (" | ".join(last) or "no error message")
        if not output.is_file():
            return f"it exited 0 but wrote no {SUMMARY}/{output.name}"
        return None

    def _document(self, require_pdf: bool) -> int:
        document = self.root / DOCUMENT
        if not document.is_file():
            message = f"no {DOCUMENT}: no PDF made (`dlgit init --report` writes a starter document)"
            print(f"dlgit report: {message}", file=sys.stderr)
            return 2 if require_pdf else 0
        import typst

        inputs = {"commit": self.data_commit, "branch": self.branch or "", "tasks": str(self.counts["tasks"])}
        files = [path for path in sorted((self.root / REPORTS).rglob("*")) if path.is_file() and not path.is_symlink()
                 and path != self.root / PDF]
        key = _digest(json.dumps([getattr(typst, "__version__", ""), inputs, self._timestamp()]) + _digest_files(files))
        if self._current("document", key):
            self.counts["pages"] = self.state["document"]["counts"]["pages"]
            return 0
        _progress(f"compiling {DOCUMENT}…")
        try:
            pdf = typst.compile(str(document), root=str(self.root), sys_inputs=inputs, timestamp=self._timestamp(),
                                ignore_system_fonts=True)
        except Exception as exc:  # typst.TypstError: the document's own error, with its place
            print(f"dlgit report: {DOCUMENT} did not compile: {escape(str(exc).strip())}", file=sys.stderr)
            return 1
        self.counts["pages"] = len(re.findall(rb"/Type\s*/Page\b", pdf))
        self._write_stage("document", key, {PDF: pdf}, counts={"pages": self.counts["pages"]})
        return 0

    def _without_extra(self, missing: list[str], require_pdf: bool) -> int:
        print(f"dlgit report: the summary CSVs are written; figures and the PDF need {', '.join(missing)}: "
              f"{quote(sys.executable)} -m pip install {quote(_extra_requirement())}", file=sys.stderr)
        self._save_state()
        return 2 if require_pdf else 0

    # --- collecting ---------------------------------------------------------------------------

    def _collected(self, template_blob: str) -> dict[str, Collected]:
        cache_file = self.repo.common_dir / "dlgit" / "report-tasks.json"
        cache = _load_json(cache_file).get("tasks", {})
        wanted = [source for source in self.sources if _cache_key(source, template_blob) not in cache]
        if wanted:
            template = self._template(template_blob)
            fresh = results.collect(self.repo, self.settings, wanted, template)
            for source in wanted:
                cache[_cache_key(source, template_blob)] = fresh.get(source.tree, Collected([], {}, [])
                                                                     )._asdict()
        self.counts["read"] = len({source.tree for source in wanted})
        keys = {_cache_key(source, template_blob) for source in self.sources}
        _save_json(cache_file, {"schema": CACHE_SCHEMA, "tasks": {key: cache[key] for key in sorted(keys)}})
        return {key: Collected(**cache[key]) for key in keys}

    def _template(self, blob: str) -> dict[str, Any]:
        data = self.repo.read_blobs([blob]).get(blob) if blob else None
        if data is None:
            return {}
        try:
            value = results.load_document("config.yaml", data)
        except ValueError as exc:
            print(f"dlgit report: note: {self.settings.template_config}: {escape(str(exc))}", file=sys.stderr)
            return {}
        return results.flat_scalars(value) if isinstance(value, dict) else {}

    def _rows(self, source: Source, collected: Collected) -> list[dict[str, Any]]:
        branch = parse_branch(source.task, self.settings)
        for note in collected.notes:
            print(f"dlgit report: note: {escape(source.task)}: {escape(note)}", file=sys.stderr)
        rows = []
        for found in collected.rows:
            subtask = found["subtask"]
            state = (found["run_state"] or "pending") if subtask else source.state
            # the commit its last run ran on; else an unmerged branch's tip (a merged folder's last change would need a log walk per task)
            commit = found["commit"] if isinstance(found["commit"], str) else (source.commit if source.state != "merged" else "")
            rows.append({"task": source.task, "subtask": subtask, "version": _text(found["version"]) or branch.version or "",
                         "time": branch.time or "", "desc": branch.desc or "", "state": state, "commit": commit,
                         "params": found["params"], "metrics": found["metrics"],
                         **({"notes": collected.notes} if collected.notes and not subtask else {})})
        return rows

    def _figure_data(self, collected: dict[str, Collected], template_blob: str) -> dict[str, str]:
        stacked: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for source in self.sources:
            for name, pieces in collected[_cache_key(source, template_blob)].figures.items():
                if not FIGURE_NAME.fullmatch(name) or name in RESERVED:
                    print(f"dlgit report: note: {escape(source.task)}: results/{escape(name)}.csv: the name is not usable "
                          "as a summary file name (letters, digits, . _ -; not tasks or figures): left out", file=sys.stderr)
                    continue
                stacked.setdefault(name, []).extend((source.task, piece) for piece in pieces)
        return {f"{SUMMARY}/{name}.csv": _stacked_csv(pieces) for name, pieces in sorted(stacked.items())}

    # --- state --------------------------------------------------------------------------------

    def _current(self, stage: str, key: str) -> bool:
        """Did the last report make this stage from the same inputs, and are its outputs untouched?"""
        done = self.state.get(stage)
        if not isinstance(done, dict) or done.get("key") != key:
            return False
        return all(_digest_files([self.root / path]) == digest for path, digest in done.get("outputs", {}).items())

    def _write_stage(self, stage: str, key: str, files: dict[str, str | bytes], outputs: Iterable[str] = (),
                     counts: dict[str, int] | None = None) -> None:
        for path, content in files.items():
            self._write_if_changed(path, content)
        names = [*files, *outputs]
        self.state[stage] = {"key": key, "outputs": {path: _digest_files([self.root / path]) for path in names},
                             "counts": counts or {}}
        self.stages.append(stage)
        self._save_state()

    def _write_if_changed(self, path: str, content: str | bytes) -> None:
        data = content.encode() if isinstance(content, str) else content
        target = self.root / path
        if target.is_file() and not target.is_symlink() and target.read_bytes() == data:
            return
        if target.is_symlink():
            target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.dlgit-tmp")
        temporary.write_bytes(data)
        os.replace(temporary, target)
        self.written.append(path)

    def _save_state(self) -> None:
        _save_json(self.state_file, self.state)

    def _count(self, counts: dict[str, int]) -> None:
        self.counts.update(counts)

    def _timestamp(self) -> int:
        return int(self.repo.out("show", "-s", "--format=%ct", self.data_commit).strip() or 0)

    def summary(self) -> str:
        counts = self.counts
        what = f"{counts['tasks']:,} task(s)" + (f" and {counts['subtasks']:,} sub-task(s)" if counts["subtasks"] else "")
        if not self.written:
            return f"{what}; nothing changed since the last report"
        parts = [what + (f" ({counts['read']:,} read anew)" if counts["read"] else ""), f"{len(self.written)} file(s) written"]
        if counts["figures"] or counts["failed"]:
            parts.append(f"{counts['figures']} figure(s)" + (f", {counts['failed']} failed" if counts["failed"] else ""))
        if counts["pages"]:
            parts.append(f"{PDF} ({counts['pages']} page(s))")
        return "; ".join(parts)


def _cache_key(source: Source, template_blob: str) -> str:
    return f"{source.tree}:{template_blob}"


# --- writing the summary ---------------------------------------------------------------------


def _tasks_csv(rows: list[dict[str, Any]]) -> str:
    params = sorted({key for row in rows for key in row["params"]})
    metrics = sorted({key for row in rows for key in row["metrics"]})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*FIXED_COLUMNS, *(f"params.{key}" for key in params), *(f"metrics.{key}" for key in metrics)])
    for row in rows:
        writer.writerow([*(row[column] for column in FIXED_COLUMNS), *(_text(row["params"].get(key)) for key in params),
                         *(_text(row["metrics"].get(key)) for key in metrics)])
    return out.getvalue()


def _tasks_json(rows: list[dict[str, Any]], commit: str, branch: str | None) -> str:
    head = json.dumps({"schema": 1, "commit": commit, "branch": branch}, sort_keys=True, ensure_ascii=False)
    tasks = ",\n".join(json.dumps(_finite(row), sort_keys=True, ensure_ascii=False, allow_nan=False) for row in rows)
    return f'{head[:-1]}, "tasks": [\n{tasks}\n]}}\n'  # one task a line: readable, and diffs name the rows that changed


def _stacked_csv(pieces: list[tuple[str, dict[str, Any]]]) -> str:
    """Every piece's lines under one header, each after its task and sub-task: a piece with the
    common header keeps its lines as they are, another one has its columns put in place."""
    header = list(dict.fromkeys(column for _, piece in pieces for column in piece["header"] if column not in ("task", "subtask")))
    out = [results.csv_line(["task", "subtask", *header])]
    for task, piece in pieces:
        prefix = results.csv_line([task, piece["subtask"]]) + ","
        if piece["header"] == header:
            out.extend(prefix + line for line in piece["lines"])
            continue
        index = {column: i for i, column in enumerate(piece["header"])}
        for line in piece["lines"]:
            row = results.parse_line(line)
            out.append(prefix + results.csv_line([row[index[column]] if index.get(column, len(row)) < len(row) else ""
                                                  for column in header]))
    return "\n".join(out) + "\n"


def _text(value: Any) -> str:
    """A value as one CSV cell: numbers as Python writes them (shortest round trip), true/false, empty for null."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: those become their text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


# --- small helpers ---------------------------------------------------------------------------


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _digest_files(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(os.fsencode(path.name) + b"\0")
        try:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError:
            digest.update(b"missing")
    return digest.hexdigest()


def _load_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) and value.get("schema", CACHE_SCHEMA) == CACHE_SCHEMA else {}


def _save_json(path: Path, value: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps({"schema": CACHE_SCHEMA, **value}, sort_keys=True), encoding="utf-8")
    os.replace(temporary, path)


def _progress(message: str) -> None:
    if sys.stderr.isatty():
        print(f"dlgit report: {message}", file=sys.stderr, flush=True)


def _extra_requirement() -> str:
    """The pip requirement that adds the report extra to this dlgit, from where it was installed."""
    from dlgit import origin

    try:
        return origin.installed().with_extra("report")
    except UsageError:
        return "dlgit[report]"
