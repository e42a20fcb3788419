"""Geometry for the server-rendered SVG chart (no JavaScript, no chart library)."""

from __future__ import annotations

import math
from typing import Any

WIDTH, HEIGHT = 640, 200
LEFT, BOTTOM, TOP = 36, 24, 10


def _nice_step(value: int, ticks: int = 4) -> int:
    """The smallest whole step of 1, 2, 3 or 5 times 10ⁿ whose ``ticks`` steps reach ``value``:
    gridlines read 0, 3, 6, 9, 12 for a maximum of 9, never 2.5 rounded to 2."""
    need = max(1, math.ceil(value / ticks))
    magnitude = 10 ** int(math.log10(need))
    for step in (1, 2, 3, 5, 10):
        if step * magnitude >= need:
            return step * magnitude
    return need  # pragma: no cover (10 times magnitude always reaches it)


def stacked_bars(
    series: list[dict[str, Any]], outcomes: list[tuple[str, str, tuple[str, ...]]]
) -> dict[str, Any]:
    """Turn ``[{"day": date, "counts": {outcome: n}}]`` into bars of stacked rectangles."""
    totals = [sum(point["counts"].values()) for point in series]
    step = _nice_step(max(totals, default=0))
    top = step * 4
    plot_h = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(len(series), 1)
    bar_w = slot * 0.6
    bars = []
    for i, point in enumerate(series):
        x = LEFT + i * slot + (slot - bar_w) / 2
        y = HEIGHT - BOTTOM
        segments = []
        for key, label, _statuses in outcomes:
            n = point["counts"].get(key, 0)
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            segments.append({"key": key, "label": label, "n": n, "y": y, "h": h})
        bars.append(
            {
                "x": x,
                "w": bar_w,
                "cx": x + bar_w / 2,
                "label": point["day"].strftime("%a %d"),
                "total": totals[i],
                "top_y": y - 4,
                "segments": segments,
            }
        )
    grid = [{"y": HEIGHT - BOTTOM - plot_h * i / 4, "value": step * i} for i in range(5)]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "label_y": HEIGHT - 8,
        "bars": bars,
        "grid": grid,
        "legend": [(key, label) for key, label, _s in outcomes],
        "total": sum(totals),
    }
