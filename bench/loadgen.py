"""A small HTTP/1.1 load generator: raw asyncio sockets, keep-alive, hand-written requests.

httpx tops out near 350 requests/s on one core here; this reaches thousands, so it is not
what limits a benchmark (each bench also runs it against a plain baseline to show that).

Benches run it in a process of its own at nice 19 (`measure`): Ray's workers run at nice
15, and a generator sharing their priority steals the CPU the server needs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: tuple[float, ...]
    statuses: dict[int, int]

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def build_request(method: str, path: str, host: str, body: bytes = b"", ctype: str = "") -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    if body or method == "POST":
        head += [f"Content-Type: {ctype or 'application/json'}", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length = 0
    chunked = False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while (size := int((await reader.readline()).strip() or b"0", 16)) > 0:
            await reader.readexactly(size + 2)
        await reader.readline()
    elif length:
        await reader.readexactly(length)
    return status


async def run_load(
    host: str,
    port: int,
    requests: list[bytes],
    *,
    connections: int,
    duration_s: float,
    max_requests: int | None = None,
) -> LoadResult:
    """Each connection sends the next request when the previous answer arrives.

    Requests are taken from `requests` in order across all connections (wrapping around),
    so with `max_requests=len(requests)` no request is sent twice.
    """
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    sent = 0
    deadline = time.perf_counter() + duration_s

    async def connection() -> None:
        nonlocal errors, sent
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline and (max_requests is None or sent < max_requests):
                payload = requests[sent % len(requests)]
                sent += 1
                started = time.perf_counter()
                writer.write(payload)
                try:
                    status = await _read_response(reader)
                except (ConnectionError, asyncio.IncompleteReadError):
                    errors += 1
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    return LoadResult(len(latencies), errors, elapsed, tuple(latencies), statuses)


def summary(result: LoadResult, cpu_s: float, requests: int) -> dict[str, Any]:
    """The figures a bench prints: rate, p50/p99, statuses, and the generator's own CPU use
    (% of one core over the run) and whether it ran out of distinct requests."""
    return {
        "per_s": round(result.per_s),
        "p50_ms": round(result.percentile(50), 2),
        "p99_ms": round(result.percentile(99), 2),
        "requests": result.requests,
        "errors": result.errors,
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "loadgen_cpu_pct": round(100 * cpu_s / result.seconds) if result.seconds else 0,
        "exhausted": result.requests + result.errors >= requests > 1,
    }


def measure(
    port: int,
    path: str,
    *,
    seconds: float,
    connections: int,
    bodies: Path | None = None,
) -> dict[str, Any]:
    """Run the generator against 127.0.0.1:`port` in its own process at nice 19.

    Without `bodies`, GET `path` over and over; with it, POST each line of that file (one
    JSON body per line) once, in order. Returns `summary` of the run.
    """
    cmd = ["nice", "-n", "19", sys.executable, __file__, str(port), path]
    cmd += ["--seconds", str(seconds), "--connections", str(connections)]
    if bodies is not None:
        cmd += ["--bodies", str(bodies)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _requests(host: str, path: str, bodies: Path | None) -> list[bytes]:
    if bodies is None:
        return [build_request("GET", path, host)]
    lines = bodies.read_bytes().splitlines()
    return [build_request("POST", path, host, line) for line in lines if line]


def main() -> None:
    parser = argparse.ArgumentParser(description="HTTP load against 127.0.0.1 (see `measure`)")
    parser.add_argument("port", type=int)
    parser.add_argument("path")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--bodies", type=Path, help="POST each line of this file once")
    args = parser.parse_args()
    requests = _requests(f"127.0.0.1:{args.port}", args.path, args.bodies)
    limit = len(requests) if args.bodies is not None else None
    cpu = time.process_time()
    result = asyncio.run(
        run_load(
            "127.0.0.1",
            args.port,
            requests,
            connections=args.connections,
            duration_s=args.seconds,
            max_requests=limit,
        )
    )
    print(json.dumps(summary(result, time.process_time() - cpu, len(requests))))


if __name__ == "__main__":
    main()
