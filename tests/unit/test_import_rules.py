"""The architecture's import rules, checked on the source (ARCHITECTURE.md, "Layout")."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_ENGINE = {
    "ray",
    "duckdb",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "requests",
    "aiohttp",
    "urllib3",
    "websockets",
    "actors",
    "api",
    "storage",
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_engine_outside_adapters_imports_no_io_and_nothing_of_ours_outside_engine() -> None:
    offenders = {}
    for path in sources("engine"):
        if "adapters" in path.relative_to(ROOT / "engine").parts:
            continue
        bad = imports_of(path) & FORBIDDEN_IN_ENGINE
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_engine_never_reads_the_wall_clock() -> None:
    offenders = []
    for path in sources("engine"):
        if path.name == "clock.py":
            continue  # LiveClock is the one place that reads it
        text = path.read_text()
        if any(s in text for s in ("datetime.now(", "datetime.utcnow(", "time.time()")):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_layers_import_only_downwards() -> None:
    allowed = {
        "storage": {"engine", "storage"},
        "actors": {"engine", "storage", "actors"},
    }
    ours = {"engine", "storage", "actors", "api"}
    offenders = {}
    for package, ok in allowed.items():
        for path in sources(package):
            bad = (imports_of(path) & ours) - ok
            if bad:
                offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_routes_talk_to_actors_not_to_storage() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in sorted((ROOT / "api" / "routes").rglob("*.py"))
        if "storage" in imports_of(p)
    ]
    assert offenders == []


def test_nothing_imports_api() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for package in ("engine", "storage", "actors")
        for p in sources(package)
        if "api" in imports_of(p)
    ]
    assert offenders == []


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import ray\nfrom storage.store import Store\nfrom . import x\n")
    assert imports_of(sample) == {"ray", "storage"}
