"""`tandem run` as a user runs it: its own local Ray, real HTTP, Ctrl-C to stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port


def test_run_serves_health_within_60_s_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port, dashboard = free_port(), free_port()
    env = {
        **os.environ,
        "TANDEM_DATA_DIR": str(tmp_path / "var"),
        "TANDEM_PORT": str(port),
        "TANDEM_DASHBOARD_PORT": str(dashboard),
        "TANDEM_NUM_CPUS": "2",
    }
    tandem = Path(sys.executable).parent / "tandem"
    log = (tmp_path / "run.log").open("w+")
    proc = subprocess.Popen([str(tandem), "run"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        started = time.monotonic()
        body = None
        while time.monotonic() - started < 60 and proc.poll() is None:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                if response.status_code == 200:
                    body = response.json()
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        assert body is not None, "no 200 from /health within 60 s"
        assert body["status"] == "ok"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    log.seek(0)
    output = log.read()
    assert f"http://127.0.0.1:{port}/docs" in output
    assert "get-auth-token" in output  # how to open the dashboard
    assert "stopped cleanly" in output
    assert (tmp_path / "var" / "replay-spy-2013-10" / "tandem.duckdb").exists()
    migrations = subprocess.run(
        [str(tandem), "migrate", "status"],
        env={**env, "TANDEM_DATA_DIR": str(tmp_path / "var" / "replay-spy-2013-10")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    from storage.migrate import discover

    # the file was released by the stopped run and holds every migration
    assert migrations.stdout.count("applied") == len(discover())
