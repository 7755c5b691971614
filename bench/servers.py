"""The servers the HTTP benches start: a real `tandem run`, and plain uvicorn + FastAPI
baselines that do the same work without Ray.

Each runs as a process of its own; `running` starts one, waits until it answers, and stops
it with SIGINT (as Ctrl-C would) when the bench is done with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from engine.alerts import masked_payload
from engine.clock import LiveClock
from engine.errors import Rejected
from engine.intake import (
    RequestInfo,
    SignalDraft,
    WebhookCredentials,
    WebhookRequest,
    evaluate,
    request_event,
    signal_draft,
)
from engine.ratelimit import BucketPolicy, KeyedRateLimiter
from engine.settings import Settings
from storage.eventlog import EventLog
from storage.store import Store
from storage.writes import AppendEvents, InsertSignal


def free_port() -> int:
    """A TCP port nobody listens on right now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, path: str, timeout_s: float = 90) -> None:
    """Return once GET `path` on 127.0.0.1:`port` answers 200; TimeoutError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"nothing answered on port {port} within {timeout_s} s")


@contextlib.contextmanager
def running(
    cmd: list[str], env: dict[str, str], port: int, ready: str, log: Path | None = None
) -> Iterator[None]:
    """Run `cmd` until the block ends; the block starts once `ready` answers 200.

    Its output goes to `log` (else nowhere). On exit the process gets SIGINT and up to 60 s
    to stop cleanly (a `tandem run` drains its Store then), else it is killed.
    """
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("wb")) if log is not None else subprocess.DEVNULL
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_ready(port, ready)
            yield
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def tandem_run(port: int, data_dir: Path, **settings: str) -> tuple[list[str], dict[str, str]]:
    """The command and environment of a `tandem run` on `port` keeping its data in
    `data_dir`; `settings` adds TANDEM_* variables (`ingress="proxy"` -> TANDEM_INGRESS).

    `--no-replay`: by default `tandem run` replays the bundled alerts over HTTP at start,
    which would load the server (and add signals) while a bench measures it. The rest is
    as a user runs it: the simulated clock and Engine 1's workers behind the webhook.
    """
    env = {
        **os.environ,
        "TANDEM_PORT": str(port),
        "TANDEM_DASHBOARD_PORT": str(free_port()),
        "TANDEM_DATA_DIR": str(data_dir),
    }
    env.update({f"TANDEM_{name.upper()}": value for name, value in settings.items()})
    return [str(Path(sys.executable).parent / "tandem"), "run", "--no-replay"], env


def serve(app: FastAPI, port: int) -> None:
    """Serve `app` on 127.0.0.1:`port` with plain uvicorn until SIGINT."""
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def livez_app(app: FastAPI | None = None) -> FastAPI:
    """Plain FastAPI with Tandem's `GET /livez` (no work): the front door's baseline.
    Given `app`, adds the route to it."""
    app = app if app is not None else FastAPI()

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "alive"}

    return app


class PlainWebhook:
    """Tandem's webhook work on an accepted alert, in one process with no Ray: the request
    checks of `engine.intake.evaluate` (size, source, parse, secret, fields, rate limit),
    the masked payload, `signal_draft`, and the same `InsertSignal` group-committed by a
    `Store` on a real DuckDB file; answered only after the commit. Committed events are
    landed as Parquet every interval, as the Store actor does."""

    def __init__(self, settings: Settings) -> None:
        self.clock = LiveClock()
        self.store = Store(settings.db_path, self.clock, max_batch=settings.store_max_batch)
        self.log = EventLog(settings.events_dir)
        self.settings = settings
        self.creds = WebhookCredentials(
            secret=settings.webhook_secret.get_secret_value(), sources=settings.webhook_sources
        )
        policy = BucketPolicy(settings.webhook_rate_per_min / 60.0, settings.webhook_burst)
        self.limiter = KeyedRateLimiter(policy)

    async def handle(self, request: WebhookRequest) -> tuple[int, dict[str, Any]]:
        now = self.clock.now()
        payload = masked_payload(request.body, request.content_type, (self.creds.secret,))
        info = RequestInfo(
            now, request.source, request.content_type, len(request.body), None, payload
        )
        try:
            alert, method = evaluate(request, self.creds, self.limiter, now)
        except Rejected as exc:
            await self.store.write(AppendEvents((request_event(info, exc.status, exc.code),)))
            return exc.status, {"error": exc.code, "detail": exc.detail}
        info = replace(info, auth=method)
        draft = signal_draft(alert, info, self.settings.dedupe_window_s)
        result = await self.store.write(_insert_signal(draft))
        if result.duplicate_of is not None:
            return 200, {"signal_id": result.duplicate_of, "duplicate": True}
        return 201, {"signal_id": result.ids[0]}

    async def export_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.export_interval_s)
            await self.store.export_events(self.log, self.settings.export_max_rows)


def _insert_signal(draft: SignalDraft) -> InsertSignal:
    """The write the Store actor's `record_signal` makes of a draft."""
    return InsertSignal(
        row=draft.row,
        dedupe_key=draft.dedupe_key,
        received_at=draft.received_at,
        window_s=draft.window_s,
        events=draft.events,
        duplicate_events=draft.duplicate_events,
    )


def durable_webhook_app(settings: Settings) -> FastAPI:
    """Plain FastAPI with `POST /webhook` doing Tandem's durable insert without Ray
    (`PlainWebhook`), and `GET /livez`."""
    plain = PlainWebhook(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        plain.log.cleanup()
        await plain.store.start()
        exporter = asyncio.create_task(plain.export_loop())
        yield
        exporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await exporter
        await plain.store.close()

    app = livez_app(FastAPI(lifespan=lifespan))

    @app.post("/webhook")
    async def webhook(request: Request) -> JSONResponse:
        webhook_request = WebhookRequest(
            body=await request.body(),
            content_type=request.headers.get("content-type"),
            url_token=None,
            signature=None,
            source=request.client.host if request.client else None,
        )
        status, body = await plain.handle(webhook_request)
        return JSONResponse(body, status_code=status)

    return app
