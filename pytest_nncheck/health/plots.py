"""Plots as inline SVG strings: line charts with axes and legends, histograms, filter images.

No plotting library and no script: the page opens anywhere, offline, as a CI artifact.
"""
from __future__ import annotations

import math
from html import escape
from typing import Dict, List, Optional, Sequence, Tuple

from .statistics import Histogram

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
Series = Tuple[str, Sequence[float], Sequence[Optional[float]]]


def _ticks(low: float, high: float, count: int = 5) -> List[float]:
    if high <= low:
        return [low]
    step = (high - low) / (count - 1)
    return [low + i * step for i in range(count)]


def _label(value: float, log: bool) -> str:
    if log:
        return f"1e{value:.0f}" if abs(value - round(value)) < 1e-9 else f"{10 ** value:.1e}"
    return f"{value:.3g}"


def line_chart(series: Sequence[Series], title: str, x_label: str, y_label: str, *,
               log_y: bool = False, reference: Optional[Tuple[float, str]] = None,
               marks: Sequence[Tuple[float, str]] = (), width: int = 620, height: int = 300) -> str:
    """Lines over a shared x axis; a log y axis drops values <= 0; ``reference`` draws a dashed
    horizontal line (value, label); ``marks`` draw vertical lines at (x, label)."""
    left, right, top, bottom = 70, 170, 30, 45
    plot_w, plot_h = width - left - right, height - top - bottom

    def y_of(value: Optional[float]) -> Optional[float]:
        if value is None or not math.isfinite(value) or (log_y and value <= 0):
            return None
        return math.log10(value) if log_y else value

    points = [(x, y_of(y)) for _, xs, ys in series for x, y in zip(xs, ys)]
    ys = [y for _, y in points if y is not None]
    if reference is not None and y_of(reference[0]) is not None:
        ys.append(y_of(reference[0]))
    xs = [x for x, _ in points] or [0.0, 1.0]
    x_low, x_high = min(xs), max(max(xs), min(xs) + 1)
    y_low, y_high = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if y_high - y_low < 1e-12:
        y_low, y_high = y_low - 0.5, y_high + 0.5
    if log_y:
        y_low, y_high = math.floor(y_low), math.ceil(y_high)

    def px(x: float) -> float:
        return left + (x - x_low) / (x_high - x_low) * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y - y_low) / (y_high - y_low) * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{escape(title)}">',
             f'<text x="{left}" y="18" class="title">{escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="frame"/>']
    for y in _ticks(y_low, y_high):
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
                     f'class="grid"/><text x="{left - 6}" y="{py(y) + 4:.1f}" class="tick" '
                     f'text-anchor="end">{_label(y, log_y)}</text>')
    for x in _ticks(x_low, x_high):
        parts.append(f'<text x="{px(x):.1f}" y="{top + plot_h + 16}" class="tick" '
                     f'text-anchor="middle">{x:.0f}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" class="axis" '
                 f'text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text x="14" y="{top + plot_h / 2}" class="axis" text-anchor="middle" '
                 f'transform="rotate(-90 14 {top + plot_h / 2})">{escape(y_label)}</text>')
    if reference is not None and y_of(reference[0]) is not None:
        y = py(y_of(reference[0]))
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'class="reference"/><text x="{left + 4}" y="{y - 4:.1f}" '
                     f'class="tick">{escape(reference[1])}</text>')
    for index, (x, label) in enumerate(marks):
        right_half = px(x) > left + plot_w / 2
        parts.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{top}" y2="{top + plot_h}" '
                     f'class="mark"/><text x="{px(x) + (-3 if right_half else 3):.1f}" '
                     f'y="{top + 12 + 12 * index}" class="marklabel" '
                     f'text-anchor="{"end" if right_half else "start"}">{escape(label)}</text>')
    for index, (name, xs_, ys_) in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        segments, current = [], []
        for x, y in zip(xs_, ys_):
            value = y_of(y)
            if value is None:
                segments, current = segments + [current] if current else segments, []
            else:
                current.append(f"{px(x):.1f},{py(value):.1f}")
        segments += [current] if current else []
        for segment in segments:
            if len(segment) == 1:
                x, y = segment[0].split(",")
                parts.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{colour}"/>')
            else:
                parts.append(f'<polyline points="{" ".join(segment)}" fill="none" '
                             f'stroke="{colour}" stroke-width="1.6"/>')
        legend_y = top + 10 + index * 16
        if legend_y < top + plot_h:
            parts.append(f'<line x1="{left + plot_w + 10}" x2="{left + plot_w + 26}" '
                         f'y1="{legend_y}" y2="{legend_y}" stroke="{colour}" stroke-width="3"/>'
                         f'<text x="{left + plot_w + 30}" y="{legend_y + 4}" class="legend">'
                         f'{escape(name[:22])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram_chart(histograms: Dict[int, Histogram], title: str, x_label: str,
                    width: int = 300, height: int = 170) -> str:
    """The first and last sampled step's distributions, drawn as outlines over one x axis."""
    left, right, top, bottom = 40, 10, 26, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    low = min(h.low for h in histograms.values())
    high = max(h.high for h in histograms.values())
    high = high if high > low else low + 1.0
    peak = max((max(h.counts) for h in histograms.values() if h.counts), default=1) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{escape(title)}">',
             f'<text x="{left}" y="16" class="title small">{escape(title[:44])}</text>',
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="frame"/>']
    for index, (step, histogram) in enumerate(sorted(histograms.items())):
        colour = ("#999999", PALETTE[0])[min(index, 1)] if len(histograms) > 1 else PALETTE[0]
        bins = len(histogram.counts)
        span = (histogram.high - histogram.low) or 1.0
        points = []
        for i, count in enumerate(histogram.counts):
            x0 = left + (histogram.low + i * span / bins - low) / (high - low) * plot_w
            x1 = left + (histogram.low + (i + 1) * span / bins - low) / (high - low) * plot_w
            y = top + plot_h - count / peak * plot_h
            points += [f"{x0:.1f},{y:.1f}", f"{x1:.1f},{y:.1f}"]
        parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
                     f'stroke-width="1.5"/>')
        zeros = f", {histogram.zeros} zeros" if histogram.zeros else ""
        parts.append(f'<text x="{left + plot_w - 4}" y="{top + 12 + 12 * index}" class="legend" '
                     f'text-anchor="end" fill="{colour}">step {step}{zeros}</text>')
    for x in _ticks(low, high, 3):
        label = f"1e{x:.0f}" if any(h.log10 for h in histograms.values()) else f"{x:.2g}"
        parts.append(f'<text x="{left + (x - low) / (high - low) * plot_w:.1f}" '
                     f'y="{top + plot_h + 13}" class="tick" text-anchor="middle">{label}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 4}" class="axis" '
                 f'text-anchor="middle">{escape(x_label)}</text></svg>')
    return "".join(parts)


def filter_images(weights: List[List[List[List[float]]]], pixel: int = 10) -> str:
    """Each kernel as a small image (RGB when it has 3 input channels, else the channel mean in
    grey), every kernel scaled to its own range, as CS231n shows first-layer filters."""
    columns = 8
    kernels = len(weights)
    height_k, width_k = len(weights[0][0]), len(weights[0][0][0])
    cell_w, cell_h = width_k * pixel + 6, height_k * pixel + 6
    rows = (kernels + columns - 1) // columns
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{columns * cell_w}" '
             f'height="{rows * cell_h}" role="img" aria-label="first-layer filters">']
    for k, kernel in enumerate(weights):
        values = [v for channel in kernel for row in channel for v in row]
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        ox, oy = (k % columns) * cell_w + 3, (k // columns) * cell_h + 3
        for i in range(height_k):
            for j in range(width_k):
                if len(kernel) == 3:
                    rgb = [int(255 * (kernel[c][i][j] - low) / span) for c in range(3)]
                else:
                    grey = int(255 * (sum(ch[i][j] for ch in kernel) / len(kernel) - low) / span)
                    rgb = [max(0, min(255, grey))] * 3
                parts.append(f'<rect x="{ox + j * pixel}" y="{oy + i * pixel}" width="{pixel}" '
                             f'height="{pixel}" fill="rgb({rgb[0]},{rgb[1]},{rgb[2]})"/>')
    parts.append("</svg>")
    return "".join(parts)
