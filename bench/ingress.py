"""Serve's ingress modes measured in one run: proxy vs direct ingress vs plain uvicorn.

Each Tandem instance is a real `tandem run` (its own local Ray) answering `GET /livez`
(no actor call: the front door alone). The baseline is a plain uvicorn + FastAPI process
with the same route. The load generator runs in its own process at nice 19, 32 keep-alive
connections; its rate against the baseline shows it is not the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadgen import build_request, run_load  # noqa: E402
from tests.conftest import free_port  # noqa: E402


def serve_baseline(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "alive"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def load(port: int, seconds: float, connections: int) -> None:
    request = build_request("GET", "/livez", f"127.0.0.1:{port}")
    result = asyncio.run(
        run_load("127.0.0.1", port, [request], connections=connections, duration_s=seconds)
    )
    out = {
        "per_s": round(result.per_s),
        "p50_ms": round(result.percentile(50), 2),
        "p99_ms": round(result.percentile(99), 2),
        "errors": result.errors,
        "statuses": result.statuses,
    }
    print(json.dumps(out))


def wait_ready(port: int, path: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"nothing answered on port {port} within {timeout_s} s")


def measure(port: int, seconds: float, connections: int) -> dict[str, Any]:
    cmd = ["nice", "-n", "19", sys.executable, __file__, "--load", str(port)]
    cmd += ["--seconds", str(seconds), "--connections", str(connections)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def with_server(cmd: list[str], env: dict[str, str], port: int, ready: str, run: Any) -> Any:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, ready)
        return run()
    finally:
        proc.send_signal(2)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def tandem_mode(mode: str, seconds: float, connections: int, tmp: str) -> dict[str, Any]:
    port = free_port()
    env = {
        **os.environ,
        "TANDEM_INGRESS": mode,
        "TANDEM_PORT": str(port),
        "TANDEM_DASHBOARD_PORT": str(free_port()),
        "TANDEM_DATA_DIR": f"{tmp}/{mode}",
    }
    cmd = [str(Path(sys.executable).parent / "tandem"), "run"]
    return dict(with_server(cmd, env, port, "/health", lambda: measure(port, seconds, connections)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--load", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-baseline", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return
    if args.load:
        load(args.load, args.seconds, args.connections)
        return
    seconds = 1.0 if args.smoke else args.seconds
    modes = ["direct"] if args.smoke else ["direct", "proxy"]
    port = free_port()
    cmd = [sys.executable, __file__, "--serve-baseline", str(port)]
    baseline = with_server(
        cmd, dict(os.environ), port, "/livez", lambda: measure(port, seconds, args.connections)
    )
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
