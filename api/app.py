"""The FastAPI app: thin routes that validate, authorise, call an actor, map errors."""

from __future__ import annotations

from fastapi import FastAPI

from api.backend import ActorBackend
from api.errors import install_error_handlers
from api.intake import WebhookIntake
from api.routes import admin, experiments, flags, health, lifecycle, reads, webhook


def create_app(backend: ActorBackend, intake: WebhookIntake) -> FastAPI:
    app = FastAPI(
        title="Tandem",
        version="0.1.0",
        description="Live and shadow trading engines on one stream of TradingView signals.",
    )
    app.state.backend = backend
    app.state.intake = intake
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(webhook.router)
    app.include_router(reads.router)
    app.include_router(lifecycle.router)
    app.include_router(admin.router)
    app.include_router(flags.router)
    app.include_router(experiments.router)
    return app
