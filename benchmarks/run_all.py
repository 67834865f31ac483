"""Run the six benchmarks one after another, regenerate their plots in docs/, keep every
result in benchmarks/results.json and print every target with its figure, same-run baseline,
ratio and met/missed (the table docs/benchmarks.md shows).

    python benchmarks/run_all.py            # full runs, a few minutes; writes docs/bench_*.png
    python benchmarks/run_all.py --quick    # smoke runs (plots go to a temporary folder)
    python benchmarks/run_all.py --only receiver polling

Each benchmark runs in its own process (``python benchmarks/bench_<name>.py``), so one's
leftovers never weigh on the next.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as common

HERE = Path(__file__).resolve().parent
NAMES = ("receiver", "fanout", "scaling", "polling", "peers", "ratelimit")
#: Per-round, per-job and per-create data: kept in each script's JSON line, left out of
#: results.json (the scaling curve's four rows stay: the table needs them).
BULKY = ("create_times", "latencies_ms", "memory_readings")


def slim(value: Any, top: bool = False) -> Any:
    if isinstance(value, dict):
        drop = BULKY + (("rows",) if top and value.get("benchmark") != "scaling" else ())
        return {k: slim(v) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [slim(v) for v in value]
    return value


def run(name: str, quick: bool, plot_dir: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / f"bench_{name}.py"), "--plot",
           str(plot_dir / f"bench_{name}.png")]  # fmt: skip
    if quick:
        cmd.append("--quick")
    print(f"$ {' '.join(cmd)}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def yes(flag: bool) -> str:
    return "met" if flag else "**missed**"


def table(results: dict[str, dict[str, Any]]) -> str:
    """Every target of DESIGN.md / issue 15 with its figure, baseline, ratio and verdict."""
    rows = ["| benchmark | figure | ltx2 | baseline (same run) | ratio | target | verdict |",
            "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip

    def add(bench: str, figure: str, ours: str, base: str, ratio: str, target: str,
            verdict: str) -> None:  # fmt: skip
        rows.append(f"| {bench} | {figure} | {ours} | {base} | {ratio} | {target} | {verdict} |")

    if r := results.get("receiver"):
        for key, label in (("no_confirm", "confirm_webhooks=False"),
                           ("confirm", "default (one confirming GET)")):  # fmt: skip
            v = r[key]
            add("receiver", f"deliveries/s, {label}", f"{v['per_second']:,.0f}",
                f"{r['minimal_per_second']:,.0f} (minimal handler)", f"{v['ratio']:.2f}",
                f"≥ {r['target_ratio']} × minimal", yes(v["met"]))  # fmt: skip
            add("receiver", f"the same ÷ bare handler ({label})", f"{v['per_second']:,.0f}",
                f"{r['bare_per_second']:,.0f} (bare)", f"{v['ratio_bare']:.2f}", "reported",
                "—")  # fmt: skip
        add("receiver", "server CPU µs/delivery (confirm off)", f"{r['no_confirm']['cpu_us']:.0f}",
            f"{r['minimal_cpu_us']:.0f} (minimal), {r['bare_cpu_us']:.0f} (bare)",
            f"{r['no_confirm']['cpu_ratio']:.2f} (minimal ÷ ltx2)", "reported", "—")  # fmt: skip
    if r := results.get("fanout"):
        for side in ("gather", "as_completed"):
            s = r[side]
            add("fan-out", f"`{side}` wall, {r['jobs']:,} jobs", f"{s['wall']:.2f} s",
                f"{r['baseline_wall']:.2f} s (loop)", f"{s['ratio']:.2f} "
                f"({s['ratio_range'][0]:.2f}–{s['ratio_range'][1]:.2f})",
                f"≤ {s['target_ratio']}", yes(s["met"]))  # fmt: skip
            add("fan-out", f"`{side}` client CPU/job", f"{s['cpu_ms_per_job']:.3f} ms",
                f"{r['baseline_cpu_ms_per_job']:.3f} ms", f"{s['cpu_ratio']:.2f} "
                f"({s['cpu_ratio_range'][0]:.2f}–{s['cpu_ratio_range'][1]:.2f})",
                f"≤ {s['target_cpu_ratio']}", yes(s["cpu_met"]))  # fmt: skip
        g = r["gather"]
        add("fan-out", "requests/job", f"{g['requests_per_job']:.2f}",
            f"{r['baseline_requests_per_job']:.2f}", "—", "the same",
            yes(g["requests_per_job"] == r["baseline_requests_per_job"]))  # fmt: skip
        lo, hi = r["pending_sizes"]
        add("fan-out", f"bytes per pending job (slope {lo:,}→{hi:,})",
            f"{r['pending_bytes_per_job_traced']:,} traced, {r['pending_bytes_per_job_rss']:,} RSS",
            "—", "—", "< 4,096", yes(r["pending_met"]))  # fmt: skip
    if r := results.get("scaling"):
        pts = r["rows"]
        cpu = ", ".join(f"{p['cpu_ms_per_job']:.2f}" for p in pts)
        mem = ", ".join(f"{p['bytes_per_pending_job']:,}" for p in pts)
        sizes = "/".join(f"{p['pending']:,}" for p in pts)
        add("scaling", f"client CPU ms/job at {sizes} pending", cpu, "—",
            f"±{r['cpu_deviation']:.0%} of median", "±20 %", yes(r["cpu_flat"]))  # fmt: skip
        add(
            "scaling",
            f"bytes per pending job at {sizes}",
            mem,
            "—",
            f"±{r['memory_deviation']:.0%} of median",
            "±20 %",
            yes(r["memory_flat"]),
        )
        big = [p for p in pts if p["pending"] >= 10_000]
        if big:
            add("scaling", "bytes per pending job at " + " and ".join(
                f"{p['pending']:,}" for p in big), ", ".join(
                f"{p['bytes_per_pending_job']:,}" for p in big), "—", "—", "< 4,096",
                yes(r["memory_met"]))  # fmt: skip
    if r := results.get("polling"):
        v = r["variants"]
        a = v["adaptive"]
        f01, f15 = v["fixed 0.1 s"], v["fixed 15 s"]
        add("polling", f"median status requests/job, {a['jobs']} jobs of 30–120 s",
            f"{a['median_requests']:g}", f"{f01['median_requests']:g} (0.1 s), "
            f"{f15['median_requests']:g} (15 s)", "—", "≤ 12",
            yes(a["median_requests"] <= 12))  # fmt: skip
        add("polling", "results later than max(1 s, 10 %)", f"{a['late']} of {a['jobs']}",
            f"{f01['late']} of {f01['jobs']} (0.1 s), {f15['late']} of {f15['jobs']} (15 s)",
            f"worst {a['worst_latency_over_bound']:.2f} × bound", "0",
            yes(a["all_within_bound"]))  # fmt: skip
        fs = v["fal stream"]
        add("polling", "fal status stream: status requests/job", f"{fs['max_requests']} (max)",
            "—", "—", "1", yes(fs["max_requests"] == 1))  # fmt: skip
        w = v["webhook never comes"]
        add(
            "polling",
            "webhook expected, never comes: extra latency",
            f"median {w['median_latency_s']:g} s, max {w['max_latency_s']:g} s",
            "—",
            f"worst {w['worst_latency_over_bound']:.2f} × bound",
            f"≤ {r['webhook_never_comes_bound_s']:g} s",
            yes(r["webhook_never_comes_met"]),
        )
    if r := results.get("peers"):
        s = r["sides"]
        fal = s["fal-client 1.0.3"]
        for name in ("ltx2 (fal, status stream)", "ltx2 (fal, webhooks)"):
            o = s[name]
            add("peers", f"requests/job, {name}", f"{o['requests_per_job']:.2f}",
                f"{fal['requests_per_job']:.2f} (fal-client; ~"
                f"{fal['requests_per_job_at_real_time']:,.0f} at real job lengths)",
                f"{o['requests_per_job'] / fal['requests_per_job']:.2f}", "fewer",
                yes(o["requests_per_job"] < fal["requests_per_job"]))  # fmt: skip
            add("peers", f"median latency, {name}", f"{o['latency_ms_median']:.0f} ms "
                f"(p95 {o['latency_ms_p95']:.0f})", f"{fal['latency_ms_median']:.0f} ms "
                f"(p95 {fal['latency_ms_p95']:.0f})",
                f"{o['latency_ms_median'] / fal['latency_ms_median']:.2f}", "lower",
                yes(o["latency_ms_median"] < fal["latency_ms_median"]))  # fmt: skip
            add(
                "peers",
                f"client CPU/job, {name}",
                f"{o['cpu_ms_per_job']:.2f} ms",
                f"{fal['cpu_ms_per_job']:.2f} ms",
                f"{o['cpu_ms_per_job'] / fal['cpu_ms_per_job']:.2f}",
                "reported",
                "—",
            )
        p = s["ltx2 (runcomfy, adaptive)"]
        for name in ("hand-written, fixed 1 s", "hand-written, fixed 15 s"):
            h = s[name]
            add(
                "peers",
                f"poll-only vs {name}: requests/job, median latency",
                f"{p['requests_per_job']:.1f}, {p['latency_ms_median']:.0f} ms",
                f"{h['requests_per_job']:.1f}, {h['latency_ms_median']:.0f} ms",
                f"{p['requests_per_job'] / h['requests_per_job']:.2f}, "
                f"{p['latency_ms_median'] / h['latency_ms_median']:.2f}",
                "reported",
                "—",
            )
    if r := results.get("ratelimit"):
        sc = r["scenarios"]
        t = sc["told"]
        add("rate limits", f"429s, {t['jobs']} jobs, limits told", f"{t['rate_limited_429']}",
            "—", "—", "0", yes(t["rate_limited_429"] == 0))  # fmt: skip
        add("rate limits", "creates/min, limits told", f"{t['creates_per_min']:.1f}",
            f"{t['limit_per_min']} (limit)", f"{t['utilisation']:.3f}", "≥ 0.95",
            yes(t["utilisation"] >= 0.95))  # fmt: skip
        for name in ("untold create limit", "told nothing"):
            u = sc[name]
            add("rate limits", f"{name}: videos, 429s, creates/min",
                f"{u['videos']}/{u['jobs']}, {u['rate_limited_429']} × 429, "
                f"{u['creates_per_min']:.1f}", f"{u['limit_per_min']}/min (the emulator's)",
                f"{u['utilisation']:.3f}", "every job, one create each",
                yes(u["nothing_lost"]))  # fmt: skip
    return "\n".join(rows) + "\n\n" + measured(results)


def measured(results: dict[str, dict[str, Any]]) -> str:
    """Which code each row measured: results.json keeps earlier runs of benchmarks not run
    again (``--only``), so one table can mix commits; this says so instead of hiding it."""
    names: dict[str, str] = {}
    for name, r in results.items():
        src = r.get("machine", {}).get("source") or {}
        commit = src.get("commit") or "unknown"
        names[name] = commit + (" (modified)" if src.get("modified") else "")
    commits = set(names.values())
    if len(commits) == 1:
        return f"Measured at commit {commits.pop()}."
    parts = ", ".join(f"{name} at {commit}" for name, commit in names.items())
    return f"**Measured at different commits**: {parts}."


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke runs; plots not kept in docs/")
    p.add_argument("--only", nargs="+", choices=NAMES, default=list(NAMES))
    p.add_argument("--table", action="store_true",
                   help="only print the table of benchmarks/results.json (no runs)")  # fmt: skip
    args = p.parse_args()
    if args.table:
        print(table(json.loads((HERE / "results.json").read_text())["results"]))
        return
    plot_dir = Path(tempfile.mkdtemp(prefix="ltx2-bench-")) if args.quick else common.DOCS
    results: dict[str, dict[str, Any]] = {}
    for name in args.only:
        results[name] = run(name, args.quick, plot_dir)
    summary = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": common.machine(),
        "results": results,
    }
    if not args.quick:
        path = HERE / "results.json"
        previous = json.loads(path.read_text()) if path.exists() else {}
        # The per-row data (every round, job and create) stays in each script's JSON line.
        kept = {**previous.get("results", {}),
                **{k: slim(r, top=True) for k, r in results.items()}}  # fmt: skip
        path.write_text(json.dumps({**summary, "results": kept}, indent=1, sort_keys=True) + "\n")
        print(f"results in {path}; plots in {plot_dir}", file=sys.stderr)
    print(table(results))
    print(json.dumps({"benchmark": "all", "met": {k: v["met"] for k, v in results.items()},
                      "seconds": {k: v["seconds"] for k, v in results.items()}}))  # fmt: skip


if __name__ == "__main__":
    main()
