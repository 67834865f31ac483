"""Run the four benchmarks one after another, regenerate their plots in docs/, keep every
result in benchmarks/results.json and print a summary table (the one docs/benchmarks.md
shows).

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
NAMES = ("receiver", "fanout", "polling", "ratelimit")
BULKY = ("rows", "create_times")


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
    return "yes" if flag else "**no**"


def table(results: dict[str, dict[str, Any]]) -> str:
    rows = ["| benchmark | figure | ltx2 | baseline | ratio | target | met? |",
            "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    if r := results.get("receiver"):
        rows.append(
            f"| receiver | deliveries/s | {r['ltx2_per_second']:.0f} | {r['bare_per_second']:.0f}"
            f" (bare handler) | {r['ratio']:.2f} | ≥ 0.8 | {yes(r['met'])} |"
        )
        rows.append(
            f"| receiver | CPU µs/delivery | {r['ltx2_cpu_us']:.0f} | {r['bare_cpu_us']:.0f} | "
            f"{r['cpu_ratio']:.2f} (bare ÷ ltx2) | — | — |"
        )
    if r := results.get("fanout"):
        for side in ("gather", "as_completed"):
            s = r[side]
            rows.append(
                f"| fan-out | {side} wall s, {r['jobs']:,} jobs | {s['wall']:.2f} | "
                f"{r['baseline_wall']:.2f} (loop) | {s['ratio']:.2f} | ≤ 1.5 | {yes(s['met'])} |"
            )
        g = r["gather"]
        rows.append(
            f"| fan-out | CPU ms/job (gather) | {g['cpu_ms_per_job']:.3f} | "
            f"{r['baseline_cpu_ms_per_job']:.3f} | {g['cpu_ratio']:.2f} | — | — |"
        )
        rows.append(
            f"| fan-out | requests/job (gather) | {g['requests_per_job']:.2f} | "
            f"{r['baseline_requests_per_job']:.2f} | — | same | "
            f"{yes(g['requests_per_job'] == r['baseline_requests_per_job'])} |"
        )
        rows.append(
            f"| fan-out | bytes per pending job | {r['pending_bytes_per_job_traced']} traced, "
            f"{r['pending_bytes_per_job_rss']} RSS | — | — | < 4096 | {yes(r['pending_met'])} |"
        )
    if r := results.get("polling"):
        v = r["variants"]
        a = v["adaptive"]
        rows.append(
            f"| polling | median status requests/job | {a['median_requests']:g} | "
            f"{v['fixed 0.1 s']['median_requests']:g} (0.1 s), "
            f"{v['fixed 15 s']['median_requests']:g} (15 s) | — | ≤ 12 | "
            f"{yes(a['median_requests'] <= 12)} |"
        )
        rows.append(
            f"| polling | results later than the bound | {a['late']} of {a['jobs']} | "
            f"{v['fixed 0.1 s']['late']} of {v['fixed 0.1 s']['jobs']} (0.1 s), "
            f"{v['fixed 15 s']['late']} of {v['fixed 15 s']['jobs']} (15 s) | — | 0 | "
            f"{yes(a['all_within_bound'])} |"
        )
        f = v["fal stream"]
        rows.append(
            f"| polling | fal stream: status requests/job | {f['max_requests']} (max) | — | — "
            f"| 1 | {yes(f['max_requests'] == 1)} |"
        )
    if r := results.get("ratelimit"):
        rows.append(
            f"| rate limits | 429s, {r['jobs']} jobs | {r['rate_limited_429']} | — | — | 0 | "
            f"{yes(r['rate_limited_429'] == 0)} |"
        )
        rows.append(
            f"| rate limits | creates/min | {r['creates_per_min']:.1f} | {r['limit_per_min']} "
            f"(limit) | {r['utilisation']:.3f} | ≥ 0.95 | {yes(r['utilisation'] >= 0.95)} |"
        )
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke runs; plots not kept in docs/")
    p.add_argument("--only", nargs="+", choices=NAMES, default=list(NAMES))
    args = p.parse_args()
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
        slim = {k: {f: v for f, v in r.items() if f not in BULKY} for k, r in results.items()}
        kept = {**previous.get("results", {}), **slim}
        path.write_text(json.dumps({**summary, "results": kept}, indent=1, sort_keys=True) + "\n")
        print(f"results in {path}; plots in {plot_dir}", file=sys.stderr)
    print(table(results))
    print(json.dumps({"benchmark": "all", "met": {k: v["met"] for k, v in results.items()},
                      "seconds": {k: v["seconds"] for k, v in results.items()}}))  # fmt: skip


if __name__ == "__main__":
    main()
