"""The Ray Serve deployment of the FastAPI app (the front door).

Ingress mode (see README, "Front door"): `direct` (default) lets the ingress replica answer
HTTP itself on the configured port; `proxy` goes through Serve's HTTP proxy actor.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import ray
from fastapi import FastAPI
from ray import serve

from actors.clock import ClockLink, LocalClock, RemoteClock
from actors.system import CLOCK_NAME, PROCESSOR_NAME, named, store_handle
from api.app import create_app
from api.backend import ActorBackend
from api.intake import WebhookIntake
from api.serve_port import allow_port_reuse_after_restart
from engine.clock import LiveClock
from engine.settings import load_settings

APP_NAME = "tandem"
log = logging.getLogger(__name__)


@serve.ingress()
class Ingress:
    """One replica: builds the app with handles to the actors it calls."""

    def __init__(self, environ: dict[str, str]) -> None:
        allow_port_reuse_after_restart()
        settings = load_settings(environ)
        clock = LiveClock()
        backend = ActorBackend(store_handle, clock, settings)
        run_clock: ClockLink = LocalClock(clock)
        if settings.clock == "sim":
            run_clock = RemoteClock(named(CLOCK_NAME))
        intake = WebhookIntake(settings, run_clock, backend.call_store, PipelineDoor())
        self._app = create_app(backend, intake)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return self._app


class PipelineDoor:
    """Pushes a new signal to the SignalProcessor at once (not awaited). The handle is
    looked up once and again only after a failure. If the processor cannot be reached the
    signal stays `received` in the Store: durable, and picked up by the next sweep."""

    def __init__(self) -> None:
        self._processor: Any = None

    def __call__(self, signal_id: int) -> None:
        try:
            if self._processor is None:
                self._processor = named(PROCESSOR_NAME)
            self._processor.process.remote(signal_id)
        except (ValueError, ray.exceptions.RayActorError):
            self._processor = None
            log.warning("signal %s: no signal processor reachable; it stays received", signal_id)


def direct_ingress_env(port: int) -> dict[str, str]:
    """Serve settings that pin the direct-ingress replica's HTTP port to `port`."""
    return {
        "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(port),
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(port + 1),
        # a released port goes straight back to the pool: there is only one
        "RAY_SERVE_PORT_QUARANTINE_S": "0",
        # Serve's default holds a stopping ingress replica open for 30 s (for a load
        # balancer to notice); here nothing sits in front that needs it.
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1",
    }


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def deploy(host: str, port: int, ingress: str, environ: dict[str, str]) -> None:
    """Start Serve and the API deployment; returns when the app is running."""
    proxy_port = port if ingress == "proxy" else free_port(host)
    serve.start(http_options={"host": host, "port": proxy_port})
    deployment: Any = serve.deployment(
        Ingress,
        name="api",
        num_replicas=1,
        max_ongoing_requests=2000,
        graceful_shutdown_wait_loop_s=0.5,
        graceful_shutdown_timeout_s=10,
        ray_actor_options={"num_cpus": 0},
    )
    serve.run(deployment.bind(environ), name=APP_NAME, route_prefix="/", blocking=False)


def tandem_environ() -> dict[str, str]:
    """The TANDEM_* variables the replicas need to build the same Settings."""
    return {k: v for k, v in os.environ.items() if k.startswith("TANDEM_")}
