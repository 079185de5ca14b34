"""`dlgit report` over a large history of results (issue 19's targets), beside the git work it needs.

A repository with TASKS merged task folders on dev (every fifth a sweep of 5 sub-tasks), each with
its config, a metrics file, a run record and a 100-row results/loss.csv, written with one
`git fast-import`. Then, medians of --runs runs each:

  collect        `dlgit report --collect-only` with no cache (every folder read)     target <= 2 s
  full           `dlgit report` with no cache: collect, 2 figures, the PDF          target <= 6 s
  unchanged      `dlgit report` again: nothing changed, nothing written             target <= 0.3 s
  git's reading  `git ls-tree -r -l HEAD -- tasks/` + `git cat-file --batch` of every file read

    python bench/bench_report.py [--tasks 1000] [--runs 3]

Run it from a regular install with the report extra: pip install '.[report]'.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dlgit.tasks.report_files import starter_files

TEMPLATE = "VERSION: 0.1.0\nDEBUG: false\nRESUME: null\nTRAIN: true\nTEST: false\nMODEL_PATH: null\nRANDOM_SEED: 42\nlr: 0.01\n"
SECOND_FIGURE = '''\
import csv, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
plt.rcParams["svg.hashsalt"] = "dlgit"
rows = list(csv.DictReader(open(sys.argv[1] + "/tasks.csv", encoding="utf-8")))
values = [float(row["metrics.acc"]) for row in rows if row.get("metrics.acc")]
figure, axes = plt.subplots(figsize=(5, 3))
axes.hist(values, bins=20)
axes.set_xlabel("accuracy")
figure.savefig(sys.argv[2], format="svg", metadata={"Date": None})
'''


def folder_files(index: int, sweep: bool) -> dict[str, str]:
    lr = round(0.001 * (index % 97 + 1) + 1e-7 * index, 7)  # every folder its own content, as real tasks have

    def one(prefix: str, lr_value: float) -> dict[str, str]:
        loss = "epoch,loss\n" + "".join(f"{epoch},{1 / (1 + epoch * lr_value):.5f}\n" for epoch in range(100))
        return {f"{prefix}config.yaml": TEMPLATE.replace("lr: 0.01", f"lr: {lr_value}"),
                f"{prefix}metrics.json": json.dumps({"acc": round(0.5 + lr_value, 4), "loss": round(1 / (1 + 99 * lr_value), 5)}),
                f"{prefix}runs/20260101T000001.yaml": f"commit: {'ab' * 20}\nexit_code: 0\nduration_s: 12.5\n",
                f"{prefix}results/loss.csv": loss}

    if not sweep:
        return one("", lr)
    files = {"config.yaml": TEMPLATE}
    for sub in range(5):
        files.update(one(f"subtasks/lr={lr * (sub + 1):g}/", lr * (sub + 1)))
    return files


def build(path: Path, tasks: int) -> None:
    subprocess.run(["git", "init", "-q", "-b", "dev", str(path)], check=True)
    stream = ["commit refs/heads/dev", "committer Bench <bench@example.com> 1767225600 +0000", "data 17", "docs: bench setup"]
    files = {"tasks/main/config.yaml": TEMPLATE, **starter_files("tasks/main"), "reports/figures/acc.py": SECOND_FIGURE}
    for index in range(tasks):
        name = f"task-0.1.0-2026{1 + index // 28 % 12:02d}{1 + index % 28:02d}T{index // 336:02d}0000-run{index}"
        files.update({f"tasks/{name}/{rel}": text for rel, text in folder_files(index, index % 5 == 0).items()})
    for file, text in files.items():
        data = text.encode()
        stream += [f"M 100644 inline {file}", f"data {len(data)}", data.decode()]
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input="\n".join(stream).encode() + b"\n", check=True)
    subprocess.run(["git", "checkout", "-q", "dev"], cwd=path, check=True)


def timed(command: list[str], cwd: Path, before: list[Path] = ()) -> float:
    for item in before:
        shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return took


def git_reading(repo: Path) -> float:
    start = time.perf_counter()
    listing = subprocess.run(["git", "ls-tree", "-r", "-z", "HEAD", "--", "tasks/"], cwd=repo, capture_output=True, check=True).stdout
    shas = [record.split(b"\t")[0].split()[2] for record in listing.split(b"\0") if record and b"/logs/" not in record]
    subprocess.run(["git", "cat-file", "--batch"], cwd=repo, input=b"\n".join(shas) + b"\n", capture_output=True, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    dlgit = [sys.executable, "-m", "dlgit", "report"]
    with tempfile.TemporaryDirectory() as folder:
        repo = Path(folder) / "repo"
        build(repo, args.tasks)
        fresh = [repo / "reports" / "summary", repo / "reports" / "report.pdf", repo / ".git" / "dlgit"]
        rows = {
            "git's reading": [git_reading(repo) for _ in range(args.runs)],
            "collect (no cache)": [timed([*dlgit, "--collect-only"], repo, fresh) for _ in range(args.runs)],
            "full: collect, 2 figures, PDF": [timed(dlgit, repo, fresh) for _ in range(args.runs)],
            "unchanged": [timed(dlgit, repo) for _ in range(args.runs)],
        }
        pages = subprocess.run([*dlgit], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    targets = {"collect (no cache)": 2.0, "full: collect, 2 figures, PDF": 6.0, "unchanged": 0.3}
    sweeps = (args.tasks + 4) // 5
    print(f"{args.tasks} task folders ({sweeps} of them sweeps of 5 sub-tasks), a 100-row loss.csv in each of the "
          f"{args.tasks - sweeps + 5 * sweeps} runs; medians of {args.runs}")
    for name, values in rows.items():
        target = targets.get(name)
        verdict = "" if target is None else f"   target {target} s: {'met' if statistics.median(values) <= target else 'NOT met'}"
        print(f"  {name:32} {statistics.median(values):7.2f} s{verdict}")
    print(f"  last run: {pages}")


if __name__ == "__main__":
    main()
