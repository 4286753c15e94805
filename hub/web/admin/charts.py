"""Throughput and error charts as inline SVG, drawn on the server (no JavaScript library).

    svg = bar_chart([(t0, 12, 1), (t1, 15, 0)], title="Attempts per minute")

Each bar is one time bucket: answered attempts in the lower, green part, failed ones (retried or
parked) stacked above in red; every bar carries a ``<title>`` so hovering shows the figures.
"""
from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Sequence

Bucket = tuple[datetime, int, int]


def _nice_max(value: int) -> int:
    if value <= 5:
        return 5
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def bar_chart(buckets: Sequence[Bucket], *, title: str, width: int = 720, height: int = 180,
              ok_label: str = "answered", bad_label: str = "failed") -> str:
    """Stacked bars of (time, ok, bad) as an accessible SVG document fragment."""
    left, bottom, top = 44, 22, 18
    inner_w, inner_h = width - left - 8, height - bottom - top
    peak = _nice_max(max((ok + bad for _, ok, bad in buckets), default=0))
    n = max(len(buckets), 1)
    slot = inner_w / n
    bar = max(1.0, slot * 0.8)
    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             'xmlns="http://www.w3.org/2000/svg">',
             f'<text x="{left}" y="12" class="chart-title">{escape(title)}</text>']
    for fraction in (0.0, 0.5, 1.0):
        y = top + inner_h * (1 - fraction)
        parts.append(f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" '
                     'class="grid"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" class="axis">'
                     f'{int(peak * fraction)}</text>')
    for i, (at, ok, bad) in enumerate(buckets):
        x = left + i * slot + (slot - bar) / 2
        ok_h = inner_h * ok / peak
        bad_h = inner_h * bad / peak
        label = escape(f"{at:%H:%M} UTC: {ok} {ok_label}, {bad} {bad_label}")
        parts.append(f'<g><title>{label}</title>')
        if ok:
            parts.append(f'<rect x="{x:.1f}" y="{top + inner_h - ok_h:.1f}" width="{bar:.1f}" '
                         f'height="{ok_h:.1f}" class="ok"/>')
        if bad:
            parts.append(f'<rect x="{x:.1f}" y="{top + inner_h - ok_h - bad_h:.1f}" '
                         f'width="{bar:.1f}" height="{bad_h:.1f}" class="bad"/>')
        parts.append('</g>')
    if buckets:
        for i in sorted({0, len(buckets) // 2, len(buckets) - 1}):
            x = left + i * slot + slot / 2
            parts.append(f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle" class="axis">'
                         f'{buckets[i][0]:%H:%M}</text>')
    parts.append('</svg>')
    return "".join(parts)
