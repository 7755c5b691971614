"""Keep the direct-ingress HTTP port stable across replica restarts.

Ray Serve 2.60 (pinned) binds a direct-ingress replica's HTTP socket without
SO_REUSEADDR. After a replica dies, the kernel keeps its closed connections in TIME_WAIT
on that port for a minute, the new replica's bind fails, and Serve then blocks the port
for good: the API would never come back on its configured port. Inside the replica, before
Serve starts the server (it does so after our constructor), we pass Serve's own
`enable_so_reuseport=True`, which sets SO_REUSEADDR (and SO_REUSEPORT) on the socket.
The CLI checks that the port is free before starting, so no foreign listener shares it.
"""

from __future__ import annotations

from typing import Any


def allow_port_reuse_after_restart() -> None:
    from ray.serve._private import replica

    module: Any = replica
    original = module.start_asgi_http_server
    if getattr(original, "_tandem_reuse", False):
        return

    async def start_with_reuse(app: Any, options: Any, **kwargs: Any) -> Any:
        kwargs["enable_so_reuseport"] = True
        return await original(app, options, **kwargs)

    setattr(start_with_reuse, "_tandem_reuse", True)  # noqa: B010
    module.start_asgi_http_server = start_with_reuse
