"""The HTML report: one self-contained page per run, each plot with the problems it shows beside it.

``write_reports`` writes a folder of them with an index (what ``pytest --nncheck-html DIR`` needs).
"""
from __future__ import annotations

import os
import re
from html import escape
from typing import Dict, List, Mapping, Sequence, Tuple

from ..reports import Problem
from .plots import filter_images, histogram_chart, line_chart
from .report import TrainingReport

# Which section's plot shows each problem code.
SECTION_OF_CODE = {
    "loss-diverged": "loss", "loss-not-decreasing": "loss", "loss-oscillating": "loss",
    "overfitting": "loss", "nan": "loss",
    "update-ratio-low": "updates", "update-ratio-high": "updates",
    "vanishing-gradient": "gradients", "exploding-gradient": "gradients",
    "parameter-not-updated": "gradients",
    "dead-relu": "activations", "saturated-activation": "activations",
}
# A page draws the lines of at most this many layers per chart (the rest stay in the tables).
MAX_LINES = 10

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.verdict.passed { color: #1a7f37; } .verdict.failed { color: #c62828; }
.section { display: flex; gap: 24px; align-items: flex-start; flex-wrap: wrap; }
.plots { display: flex; flex-wrap: wrap; gap: 8px; max-width: 960px; }
aside { width: 340px; } aside h3 { font-size: 14px; margin: 0 0 6px; }
.problem { border-left: 4px solid #c62828; background: #fdf1f1; padding: 6px 10px; margin: 0 0 8px; }
.problem b { color: #c62828; } .none { color: #1a7f37; }
svg { background: #fff; } .title { font-size: 14px; font-weight: 600; }
.title.small { font-size: 12px; } .tick { font-size: 11px; fill: #555; }
.axis { font-size: 12px; fill: #333; } .legend { font-size: 11px; fill: #333; }
.frame { fill: none; stroke: #999; } .grid { stroke: #eee; }
.reference { stroke: #2ca02c; stroke-dasharray: 5 4; } .mark { stroke: #c62828; stroke-dasharray: 3 3; }
.marklabel { font-size: 11px; fill: #c62828; }
"""


def _aside(problems: Sequence[Problem]) -> str:
    if not problems:
        return '<aside><h3>Problems shown here</h3><p class="none">none</p></aside>'
    items = "".join(f'<div class="problem"><b>{escape(p.code)}</b> in <code>{escape(p.where)}'
                    f'</code>{"" if p.step is None else f" at step {p.step}"}<br>'
                    f'{escape(p.message)}</div>' for p in problems)
    return f"<aside><h3>Problems shown here</h3>{items}</aside>"


def _section(title: str, plots: List[str], problems: Sequence[Problem]) -> str:
    return (f'<h2>{escape(title)}</h2><div class="section"><div class="plots">{"".join(plots)}'
            f'</div>{_aside(problems)}</div>')


def _marks(problems: Sequence[Problem]) -> List[tuple]:
    return [(p.step, p.code) for p in problems if p.step is not None]


def render_page(report: TrainingReport, title: str = "training health") -> str:
    """The page as a string: loss, update ratios, gradient norms, nonlinearities, filters."""
    by_section: Dict[str, List[Problem]] = {}
    for problem in report.problems:
        by_section.setdefault(SECTION_OF_CODE.get(problem.code, "loss"), []).append(problem)
    weights = [s for s in report.ordered_parameters() if s.is_weight][:MAX_LINES]
    verdict = "passed" if report.passed else "failed"
    rank = "" if report.rank is None else f", rank {report.rank}"
    body = [f"<h1>{escape(title)}</h1>",
            f'<p><span class="verdict {verdict}">{verdict.upper()}</span> · {report.steps} steps '
            f"on {escape(report.device)}, sampled every {report.every}{rank} · "
            f"{len(report.problems)} problems · {escape(report.source)}</p>"]
    losses = [("train", list(range(len(report.losses))), report.losses)]
    if report.validation_losses:
        losses.append(("validation", report.validation_steps, report.validation_losses))
    loss_problems = by_section.get("loss", [])
    body.append(_section("Loss", [line_chart(losses, "loss per step", "step", "loss (log scale)",
                                             log_y=True, marks=_marks(loss_problems))],
                         loss_problems))
    update_problems = by_section.get("updates", [])
    body.append(_section("Update / weight ratio", [line_chart(
        [(s.name, s.steps, s.update_ratio) for s in weights], "||update|| / ||weight|| per step",
        "step", "ratio (log scale)", log_y=True, reference=(1e-3, "CS231n: ~1e-3"),
        marks=_marks(update_problems))], update_problems))
    gradient_problems = by_section.get("gradients", [])
    gradient_plots = [line_chart([(s.name, s.steps, s.grad_norm) for s in weights],
                                 "gradient norm per layer", "step", "||gradient|| (log scale)",
                                 log_y=True, marks=_marks(gradient_problems))]
    gradient_plots += [histogram_chart(s.gradient_histograms, s.name, "|gradient|")
                       for s in weights if s.gradient_histograms]
    body.append(_section("Gradients per layer", gradient_plots, gradient_problems))
    activation_problems = by_section.get("activations", [])
    nonlinearities = list(report.activations.values())
    activation_plots = []
    if nonlinearities:
        activation_plots.append(line_chart(
            [(f"{s.name} ({s.kind})", s.steps, s.fraction) for s in nonlinearities[:MAX_LINES]],
            "dead ReLU units / saturated tanh, sigmoid inputs", "step", "fraction",
            marks=_marks(activation_problems)))
        activation_plots += [histogram_chart(s.histograms, f"{s.name} ({s.kind}) output", "value")
                             for s in nonlinearities if s.histograms]
    body.append(_section("Activations per layer", activation_plots or
                         ["<p>no ReLU, tanh or sigmoid ran in the forward</p>"],
                         activation_problems))
    if report.filters is not None:
        body.append(f"<h2>First-layer filters ({escape(report.filters.name)})</h2>"
                    f"{filter_images(report.filters.weights)}")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
            f"</title><style>{_STYLE}</style></head><body>{''.join(body)}</body></html>")


def write_page(report: TrainingReport, path: str, title: str = "training health") -> str:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(render_page(report, title))
    return path


def page_name(key: str) -> str:
    """A file name for the page of ``key`` (a test node id), safe on every file system."""
    return (re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("_")[:120] or "report") + ".html"


def write_index(pages: Sequence[Tuple[str, str, bool, Sequence[str]]], folder: str) -> str:
    """``index.html`` in ``folder`` listing (page file, run name, passed, problem codes)."""
    rows = []
    for page, key, passed, codes in pages:
        verdict = "passed" if passed else "failed"
        rows.append(f'<tr><td><a href="{escape(page)}">{escape(key)}</a></td>'
                    f'<td class="verdict {verdict}">{verdict}</td>'
                    f"<td>{escape(', '.join(codes))}</td></tr>")
    index = os.path.join(folder, "index.html")
    with open(index, "w", encoding="utf-8") as handle:
        handle.write(f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>training '
                     f"health</title><style>{_STYLE}</style></head><body><h1>training health</h1>"
                     f"<table><tr><th>run</th><th>verdict</th><th>problems</th></tr>"
                     f"{''.join(rows)}</table></body></html>")
    return index


def write_reports(reports: Mapping[str, TrainingReport], folder: str) -> List[str]:
    """One page per report (named after its key, e.g. a test node id) and an ``index.html``
    listing them with their verdicts; returns the paths written, the index last."""
    os.makedirs(folder, exist_ok=True)
    written, pages = [], []
    for key, report in reports.items():
        name = page_name(key)
        written.append(write_page(report, os.path.join(folder, name), key))
        pages.append((name, key, report.passed, sorted({p.code for p in report.problems})))
    return written + [write_index(pages, folder)]
