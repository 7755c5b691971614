"""Serve's ingress modes measured in one run: proxy vs direct ingress vs plain uvicorn.

Each Tandem instance is a real `tandem run` (its own local Ray) answering `GET /livez`
(no actor call: the front door alone). The baseline is a plain uvicorn + FastAPI process
with the same route. The load generator runs in its own process at nice 19, 32 keep-alive
connections; its rate against the baseline shows it is not the bottleneck.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadgen import measure  # noqa: E402
from bench.servers import free_port, livez_app, running, serve, tandem_run  # noqa: E402


def baseline_mode(seconds: float, connections: int) -> dict[str, Any]:
    port = free_port()
    cmd = [sys.executable, __file__, "--serve-baseline", str(port)]
    with running(cmd, {**os.environ}, port, "/livez"):
        return measure(port, "/livez", seconds=seconds, connections=connections)


def tandem_mode(mode: str, seconds: float, connections: int, tmp: str) -> dict[str, Any]:
    port = free_port()
    cmd, env = tandem_run(port, Path(tmp) / mode, ingress=mode)
    with running(cmd, env, port, "/health"):
        return measure(port, "/livez", seconds=seconds, connections=connections)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--serve-baseline", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if args.serve_baseline:
        serve(livez_app(), args.serve_baseline)
        return
    seconds = 1.0 if args.smoke else args.seconds
    modes = ["direct"] if args.smoke else ["direct", "proxy"]
    baseline = baseline_mode(seconds, args.connections)
    results: dict[str, Any] = {"baseline_uvicorn": baseline}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            results[mode] = tandem_mode(mode, seconds, args.connections, tmp)
    for name, r in results.items():
        print(f"{name:18} {r['per_s']:7}/s  p50 {r['p50_ms']:7} ms  p99 {r['p99_ms']:7} ms")
    summary: dict[str, Any] = {"bench": "ingress", "connections": args.connections}
    for name, r in results.items():
        summary[f"{name}_per_s"] = r["per_s"]
        summary[f"{name}_p99_ms"] = r["p99_ms"]
    summary["direct_vs_baseline"] = round(results["direct"]["per_s"] / baseline["per_s"], 3)
    if "proxy" in results:
        summary["direct_vs_proxy"] = round(
            results["direct"]["per_s"] / results["proxy"]["per_s"], 2
        )
    summary["smoke"] = args.smoke
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
