"""The last step of a flow that wrote to main or dev: the commits it made there are judged by the
rules `dlgit check` uses, so a flow never leaves history that check refuses, with or without the
hooks installed."""

from __future__ import annotations

from dataclasses import dataclass

from dlgit.evidence import RefView
from dlgit.flows.steps import Context, Step, StepFailed
from dlgit.history.judge import Span, judge, policy_at
from dlgit.history.render import render_text


@dataclass
class Verify(Step):
    op = "verify"
    branches: list[list[str]]  # [branch, its tip before the flow] (JSON has no tuples)

    def describe(self) -> str:
        return f"check the new commits on {', '.join(name for name, _ in self.branches)} with dlgit's rules"

    def run(self, ctx: Context) -> None:
        refs = RefView.load(ctx.repo)
        for name, before in self.branches:
            tip = ctx.repo.rev(f"refs/heads/{name}")
            if tip is None or tip == before:
                continue
            result = judge(Span(f"{before[:12]}..{name}", tip, (before,)), name, policy_at(ctx.repo, before, name), refs)
            if not result.ok:
                raise StepFailed(render_text(result, color=False))
