"""Server-side SVG charts of a report: one chart per metric, one row per variant, the mean (or
rate) as a dot and its confidence interval as a bar, control's mean as a dashed line.

Pure string building (no JavaScript, no network): the admin inlines the SVG in its page.
"""

from __future__ import annotations

import math
from html import escape

from .report import Report

WIDTH = 640
ROW = 30
LEFT = 130  # variant names
RIGHT = 110  # the mean as text
TOP = 8
AXIS = 26


def metric_chart(report: Report, metric_name: str) -> str:
    """An SVG document: each variant's ``metric_name`` with its confidence interval."""
    metric = next(m for m in report.metrics if m.name == metric_name)
    rows = [(v.key, v.metrics[metric_name]) for v in report.variants]
    points = [x for _, s in rows for x in (s.mean, s.low, s.high) if not math.isnan(x)]
    height = TOP + ROW * len(rows) + AXIS
    title = f"{metric.title} per variant, {report.confidence:.0%} confidence interval"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="experiment-chart" '
        f'data-metric="{escape(metric_name)}" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    plot = WIDTH - LEFT - RIGHT
    if points:
        lo, hi = min(points), max(points)
        if metric.kind == "rate":
            lo = max(0.0, lo)
        if hi - lo < 1e-12:
            pad = abs(hi) * 0.1 or 1.0
            lo, hi = lo - pad, hi + pad
        pad = (hi - lo) * 0.05
        lo, hi = lo - pad, hi + pad

        def x(value: float) -> float:
            return LEFT + (value - lo) / (hi - lo) * plot

        control = rows[0][1].mean if rows else math.nan
        axis_y = TOP + ROW * len(rows) + 4
        out.append(
            f'<line x1="{LEFT}" y1="{axis_y}" x2="{LEFT + plot}" y2="{axis_y}" stroke="#adb5bd"/>'
        )
        for value, anchor in ((lo, "start"), ((lo + hi) / 2, "middle"), (hi, "end")):
            out.append(
                f'<text x="{x(value):.1f}" y="{axis_y + 16}" font-size="11" fill="#6c757d" '
                f'text-anchor="{anchor}">{escape(metric.format(value))}</text>'
            )
        if not math.isnan(control):
            cx = x(control)
            out.append(
                f'<line class="control-mean" x1="{cx:.1f}" y1="{TOP}" x2="{cx:.1f}" '
                f'y2="{axis_y}" stroke="#6c757d" stroke-dasharray="4 3"/>'
            )
    for i, (key, summary) in enumerate(rows):
        y = TOP + ROW * i + ROW / 2
        comparison = next(
            (c for c in report.comparisons if c.metric == metric_name and c.variant == key), None
        )
        color = "#007bff"
        if comparison is not None and comparison.significant:
            color = "#28a745" if comparison.better else "#dc3545"
        out.append(
            f'<text x="{LEFT - 10}" y="{y + 4:.1f}" font-size="13" text-anchor="end">'
            f"{escape(key)}</text>"
        )
        if not points or math.isnan(summary.mean):
            out.append(
                f'<text x="{LEFT}" y="{y + 4:.1f}" font-size="12" fill="#6c757d">no data</text>'
            )
            continue
        g = [f'<g class="variant" data-variant="{escape(key)}">']
        if not math.isnan(summary.low) and not math.isnan(summary.high):
            g.append(
                f'<line class="interval" x1="{x(summary.low):.1f}" y1="{y:.1f}" '
                f'x2="{x(summary.high):.1f}" y2="{y:.1f}" stroke="{color}" stroke-width="3"/>'
            )
            for end in (summary.low, summary.high):
                g.append(
                    f'<line x1="{x(end):.1f}" y1="{y - 6:.1f}" x2="{x(end):.1f}" y2="{y + 6:.1f}" '
                    f'stroke="{color}" stroke-width="2"/>'
                )
        g.append(
            f'<circle class="mean" cx="{x(summary.mean):.1f}" cy="{y:.1f}" r="5" fill="{color}"/>'
        )
        text = metric.format(summary.mean)
        detail = f"{key}: {text}"
        if not math.isnan(summary.low):
            detail += f" [{metric.format(summary.low)}, {metric.format(summary.high)}]"
        g.append(f"<title>{escape(detail)}</title>")
        g.append(
            f'<text x="{WIDTH - RIGHT + 10}" y="{y + 4:.1f}" font-size="12">{escape(text)}</text>'
        )
        g.append("</g>")
        out.extend(g)
    out.append("</svg>")
    return "".join(out)


__all__ = ["metric_chart"]
