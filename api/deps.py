"""FastAPI dependencies: the backend wired into the app at construction."""

from __future__ import annotations

from fastapi import Request

from api.backend import ActorBackend


def get_backend(request: Request) -> ActorBackend:
    backend: ActorBackend = request.app.state.backend
    return backend
