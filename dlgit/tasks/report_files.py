"""The starter files `dlgit init --report` writes (each only when missing): where results live in a
task folder, a figure script, and the Typst document with its helper. No `@preview` import: Typst
packages need the network."""

from __future__ import annotations

RESULTS_HELPER = '''\
"""Where a task's results go, so that `dlgit report` finds them (written by `dlgit init --report`).

- metrics.json: the run's final numbers, one mapping (nesting allowed: {"test": {"acc": 0.9}}).
- results/<name>.csv: the raw data of each figure as tidy CSV: a header, then one row per point
  (results/loss.csv with epoch,loss). DVC reads the same files: `dvc plots show results/loss.csv`.

Paths are relative to the working directory, which `dlgit run` makes the task's folder (a
sub-task's own folder in a sweep). Keep these files small: big outputs go to outputs/ through DVC.

    from report_data import Series, save_metrics
    losses = Series("loss", ["epoch", "loss"])
    losses.add(epoch=1, loss=0.7)
    save_metrics({"loss": 0.7, "accuracy": 0.81})
"""

import csv
import json
import os


def save_metrics(metrics, path="metrics.json"):
    """Write the run's final numbers (replacing an earlier run's)."""
    with open(path, "w", encoding="utf-8") as file:
        json.dump(metrics, file, indent=2, sort_keys=True)
        file.write("\\n")


class Series:
    """One figure's raw data, results/<name>.csv, written row by row (a new run starts it afresh)."""

    def __init__(self, name, columns, folder="results"):
        os.makedirs(folder, exist_ok=True)
        self.columns = list(columns)
        self.path = os.path.join(folder, f"{name}.csv")
        with open(self.path, "w", encoding="utf-8", newline="") as file:
            csv.writer(file, lineterminator="\\n").writerow(self.columns)

    def add(self, **values):
        with open(self.path, "a", encoding="utf-8", newline="") as file:
            csv.writer(file, lineterminator="\\n").writerow([values.get(column, "") for column in self.columns])
'''

FIGURE_SCRIPT = '''\
"""A summary figure: every task's loss curve, from reports/summary/loss.csv (every task's
results/loss.csv stacked by `dlgit report`). `dlgit report` runs each reports/figures/<name>.py as
`python <name>.py SUMMARY_FOLDER OUTPUT_SVG`; the SVG must be the same for the same data, hence the
fixed hash salt and no date."""

import csv
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

plt.rcParams["svg.hashsalt"] = "dlgit"

summary, output = Path(sys.argv[1]), sys.argv[2]
curves = defaultdict(list)
data = summary / "loss.csv"
if data.is_file():
    with data.open(encoding="utf-8", newline="") as file:
        for row in csv.DictReader(file):
            try:
                point = (float(row["epoch"]), float(row["loss"]))
            except (KeyError, ValueError):
                continue
            name = row["task"].split("-", 3)[-1] + (f"/{row['subtask']}" if row.get("subtask") else "")
            curves[name].append(point)

figure, axes = plt.subplots(figsize=(6, 3.5))
if not curves:
    axes.text(0.5, 0.5, "no results/loss.csv in any task yet", ha="center", va="center", transform=axes.transAxes)
elif len(curves) <= 12:
    for name in sorted(curves):
        epochs, losses = zip(*sorted(curves[name]))
        axes.plot(epochs, losses, label=name, linewidth=1)
    axes.legend(fontsize=6)
else:  # many runs: one collection of thin lines (thousands of plot calls would take seconds)
    axes.add_collection(LineCollection([sorted(curves[name]) for name in sorted(curves)], linewidths=0.4, alpha=0.3))
    axes.autoscale()
    axes.set_title(f"{len(curves)} runs", fontsize=8)
axes.set_xlabel("epoch")
axes.set_ylabel("loss")
figure.tight_layout()
figure.savefig(output, format="svg", metadata={"Date": None})
'''

TYPST_HELPER = '''\
// dlgit's Typst helpers (written by `dlgit init --report`; no @preview package, which needs the network).
// Typst's csv() gives every value as a string: read-rows gives numbers back.

#let integer-text = regex("^[-+]?[0-9]{1,18}$")
#let float-text = regex("^[-+]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?$")
#let number-start = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "-", "+", ".")

#let number(value) = {
  let text = str(value).trim()
  if text == "" or text.first() not in number-start or text.len() > 40 {
    value
  } else if text.match(integer-text) != none {
    int(text)
  } else if text.match(float-text) != none {
    float(text)
  } else {
    value
  }
}

// A CSV file as a list of dictionaries (column -> value), numbers as numbers.
#let read-rows(path) = csv(path, row-type: dictionary).map(row => {
  let out = (:)
  for (key, value) in row { out.insert(key, number(value)) }
  out
})

#let show-value(value, digits: 4) = if type(value) == float { str(calc.round(value, digits: digits)) } else { str(value) }

// Some columns of rows as a table.
#let rows-table(rows, columns) = table(
  columns: columns.len(),
  table.header(..columns.map(column => strong(column))),
  ..rows.map(row => columns.map(column => show-value(row.at(column, default: "")))).flatten(),
)
'''

REPORT_DOCUMENT = '''\
// The task report: `dlgit report` compiles it to reports/report.pdf with the repository as Typst's
// root, after writing reports/summary/ (tasks.csv, each figure's stacked data, the SVGs).
#import "dlgit.typ": read-rows, rows-table

#let commit = sys.inputs.at("commit", default: "unknown")
#let branch = sys.inputs.at("branch", default: "")
#set document(title: "Task report")
#set page(paper: "a4", flipped: true, margin: 1.5cm, numbering: "1")
#set text(size: 8pt)

= Task report
Tasks on #raw(branch) as of commit #raw(commit.slice(0, calc.min(12, commit.len()))).

#let tasks = read-rows("summary/tasks.csv")
#let metrics = if tasks.len() > 0 { tasks.first().keys().filter(key => key.starts-with("metrics.")) } else { () }

#let shown = 300  // a longer table is no report: every row is in reports/summary/tasks.csv
== Tasks
#let columns = ("task", "subtask", "version", "state", ..metrics.slice(0, calc.min(6, metrics.len())))
#rows-table(tasks.slice(0, calc.min(shown, tasks.len())), columns)
#if tasks.len() > shown [… and #(tasks.len() - shown) more rows in `reports/summary/tasks.csv`.]

== Figures
#for name in json("summary/figures.json") [
  #figure(image("summary/" + name, width: 70%), caption: raw(name.replace(".svg", "")))
]
'''


def starter_files(template_dir: str) -> dict[str, str]:
    """path -> content of every starter file."""
    return {f"{template_dir}/report_data.py": RESULTS_HELPER, "reports/figures/loss.py": FIGURE_SCRIPT,
            "reports/dlgit.typ": TYPST_HELPER, "reports/report.typ": REPORT_DOCUMENT}
