"""Presenting results: the terminal table, the JSON object, `docs/benchmarks.md` and its chart.

`write_docs` rewrites only the part of the page between the ``bench:begin`` and ``bench:end``
markers; the rest (method, profile findings, before/after figures) is written by people.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
CHART = "docs/img/bench-throughput-latency.png"


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def rows(res: dict[str, Any]) -> list[list[str]]:
    """One row per scenario: throughput, latency, CPU, memory, ratio to the hub."""
    hub_peak = res.get("hub_throughput") or 0.0
    order: list[tuple[str, dict[str, Any]]] = [("raw broker (pika, confirms + acks)",
                                                res["raw_broker"]),
                                               ("direct (client -> simulator)", res["direct"])]
    for workers, scenario in res["hub"]["by_workers"].items():
        order.append((f"hub, RabbitMQ + PostgreSQL, {workers} worker(s)", scenario))
    order += [("hub, embedded default", res["hub_embedded"]),
              (f"Celery pipeline, {res['celery'].get('workers')} worker(s)", res["celery"])]
    out = []
    for name, s in order:
        ratio = hub_peak / s["throughput"] if s["throughput"] else None
        out.append([name, _f(s["throughput"]), _f(s["latency_at_rate"]), _f(s["p50_ms"]),
                    _f(s["p95_ms"]), _f(s["p99_ms"]), _f(s["cpu_cores"], 2),
                    _f(s.get("cpu_ms_per_request"), 2), _f(s["peak_rss_mb"], 0), _f(ratio, 2)])
    return out


HEADER = ["scenario", "throughput /s", "latency at /s", "p50 ms", "p95 ms", "p99 ms",
          "CPU cores", "CPU ms/req", "peak MB", "hub / this"]


def table(res: dict[str, Any]) -> str:
    body = rows(res)
    widths = [max(len(r[i]) for r in [HEADER, *body]) for i in range(len(HEADER))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(r, widths)))
    out = [line(HEADER), line(["-" * w for w in widths]), *map(line, body), ""]
    for key, t in res["targets"].items():
        mark = {True: "holds", False: "MISSED", None: "not measured"}[t["holds"]]
        out.append(f"{t['what']}: {_f(t['value'], 2)} (target {t['target']}) {mark}")
    return "\n".join(out)


def _audit_cell(audit: dict[str, Any]) -> str:
    """Whole chain, and incrementally from the previous checkpoint: records and seconds."""
    if not audit.get("available"):
        return f"n/a ({audit.get('reason')})"
    cell = f"whole chain: {audit['records']:,} records in {audit['full_seconds']} s"
    if "incremental_seconds" in audit:
        cell += (f"; from the last checkpoint: {audit['incremental_records_checked']:,} records"
                 f" in {audit['incremental_seconds']} s")
    return cell + ("" if audit.get("intact") else " (**not intact**)")


def markdown(res: dict[str, Any], command: str) -> str:
    meta = res["meta"]
    md = [f"Latest run: `{command}` ({meta['mode']} mode, {meta['started_at']}, "
          f"{meta['seconds']:.0f} s; {meta['cores']} cores, {meta['memory_gb']} GB, Python"
          f" {meta['python']}). Signed in every path, on one development PKI per run: the hub"
          " seals its envelopes, signs its requests to NARSA (JWS) and verifies the signed"
          " answers; the Celery pipeline and the direct calls sign and verify the same way.",
          "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    md += ["| " + " | ".join(r) + " |" for r in rows(res)]
    md += ["", "| target | value | holds |", "|---|---|---|"]
    for t in res["targets"].values():
        holds = {True: "yes", False: "**no**", None: "not measured"}[t["holds"]]
        md.append(f"| {t['what']} {t['target']} | {_f(t['value'], 2)} | {holds} |")
    flag = res.get("hub_p99_added_flag")
    md += ["", f"Ratios: hub/direct {_f(res['hub_direct_ratio'], 3)}, hub/Celery"
               f" {_f(res['hub_celery_ratio'], 3)}, hub/raw broker {_f(res['hub_raw_ratio'], 3)};"
               f" p99 added by the hub at {_f(res['hub']['latency_at_rate'])}/s:"
               + (f" not reported ({flag})." if flag else f" {_f(res['hub_p99_added_ms'])} ms."),
           "", f"CPU per exchange at the hub's peak: {_f(res.get('hub_cpu_ms_per_exchange'), 2)} ms"
               f" in the hub's processes, {_f(res.get('pg_cpu_ms_per_exchange'), 2)} ms in"
               f" PostgreSQL; the Celery pipeline: {_f(res.get('celery_cpu_ms_per_request'), 2)}"
               " ms per request in its processes.", ""]
    md += ["Where the CPU went during the hub's peak run (cores, whole machine; `other` is"
           " everything outside the benchmark, e.g. other test suites on the same machine):", ""]
    machine = res["hub"]["runs"]["peak"]["usage"].get("machine", {})
    md += ["| " + " | ".join(machine) + " |", "|" + "---|" * len(machine),
           "| " + " | ".join(_f(v, 2) for v in machine.values()) + " |", ""]
    by_role = res["hub"]["runs"]["peak"]["usage"].get("by_role", {})
    md += ["Hub processes at peak: " + ", ".join(
        f"{role} {v['cpu_cores']:.2f} cores / {v['peak_rss_mb']:.0f} MB"
        for role, v in by_role.items()) + ".", ""]
    scale = res.get("scale", {})
    if scale.get("points"):
        md += [f"Scale ({scale['workers']} worker(s)):", "",
               "| stored cases | throughput /s | p50 ms | p99 ms | at /s | audit verification |",
               "|---|---|---|---|---|---|"]
        for pt in scale["points"]:
            verify = _audit_cell(pt["audit"])
            md.append(f"| {pt['stored_cases']:,} | {_f(pt['throughput'])} | {_f(pt['p50_ms'])} |"
                      f" {_f(pt['p99_ms'])} | {_f(pt['latency_at_rate'])} | {verify} |")
        md.append("")
    soak = res.get("soak")
    if soak:
        md += [f"Soak: {soak['minutes']:.0f} minutes at {soak['rate']}/s, {soak['workers']}"
               f" worker(s): worker RSS {_f(soak['rss_start_mb'])} -> {_f(soak['rss_end_mb'])} MB,"
               f" slope {soak['rss_slope_mb_per_min']:+.3f} MB/min; {soak['completed']} completed,"
               f" {soak['unfinished']} unfinished, p99 {_f(soak['p99_ms'])} ms.", ""]
    md += [f"![throughput and latency against load]({CHART.removeprefix('docs/')})", ""]
    return "\n".join(md)


def chart(res: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    names, values = [], []
    for r in rows(res):
        names.append(r[0].replace(", RabbitMQ + PostgreSQL", "").replace(" (", "\n("))
        values.append(float(r[1].replace(",", "")) if r[1] != "-" else 0.0)
    left.barh(names[::-1], values[::-1], color="#3b6ea5")
    left.set_xscale("log")
    left.set_xlabel("peak throughput (requests/s, log scale)")
    left.set_title("Throughput")
    curves = res.get("curves")
    if curves:
        for name, points in curves.items():
            xs = [p["offered"] for p in points]
            right.plot(xs, [p["throughput"] for p in points], marker="o", label=f"{name} done/s")
        twin = right.twinx()
        for name, points in curves.items():
            twin.plot([p["offered"] for p in points], [p["p99_ms"] or 0 for p in points],
                      linestyle="--", marker="x", label=f"{name} p99")
        twin.set_ylabel("p99 latency (ms, dashed)")
        twin.set_yscale("log")
        right.set_xlabel("offered load (requests/s)")
        right.set_ylabel("completed per second (solid)")
        right.legend(loc="upper left", fontsize=8)
        twin.legend(loc="lower right", fontsize=8)
    else:
        for name, scen in (("hub", res["hub"]), ("direct", res["direct"]),
                           ("Celery", res["celery"]), ("embedded", res["hub_embedded"]),
                           ("raw broker", res["raw_broker"])):
            pts = [(run.get("offered_rate") or run["throughput"], run["p99_ms"] or 0)
                   for run in scen["runs"].values()]
            pts.sort()
            right.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=name)
        right.set_xlabel("load (requests/s: fixed rate, or the peak of the closed loop)")
        right.set_ylabel("p99 latency (ms)")
        right.set_yscale("log")
        right.legend(fontsize=8)
    right.set_title("Latency against load")
    fig.suptitle(f"econsulat-hub benchmark ({res['meta']['mode']} mode, signed)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_docs(res: dict[str, Any], root: Path, command: str) -> Path:
    page = root / "docs" / "benchmarks.md"
    chart(res, root / CHART)
    generated = f"{BEGIN}\n{markdown(res, command)}\n{END}"
    if page.exists() and BEGIN in page.read_text() and END in page.read_text():
        text = page.read_text()
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        page.write_text(head + generated + tail)
    else:
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(f"# Benchmarks\n\n{generated}\n")
    (root / "docs" / "benchmarks.json").write_text(json.dumps(res, indent=1, default=str))
    return page
