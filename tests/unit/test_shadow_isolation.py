"""The ShadowExecutor cannot reach a broker: it is given none, holds none, and its module
imports no broker code. Engine 2's trades are shadow trades only."""

from __future__ import annotations

import ast
import inspect
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from actors.clock import LocalClock
from actors.engine_two import ShadowExecutor
from engine.adapters.replay import bundled_data_dir
from engine.adapters.symbol_file import load_symbol_table
from engine.clock import SimClock
from engine.orders import PlanConfig

BROKER_METHODS = {"submit", "cancel", "lookup", "open_orders"}
BROKER_MODULES = {
    "actors.executor",
    "actors.alpaca_broker",
    "actors.tracker",
    "engine.broker",
    "engine.adapters.alpaca_trading",
}


class Handle:
    """Stands in for an actor handle the executor is given (Store, MarketData)."""


def reachable(obj: Any, seen: set[int] | None = None) -> list[Any]:
    """Every object reachable from `obj` through instance attributes and containers."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, str | bytes | int | float | bool | type(None)):
        return []
    seen.add(id(obj))
    found = [obj]
    children: list[Any] = []
    if isinstance(obj, dict):
        children = list(obj.values())
    elif isinstance(obj, list | tuple | set | frozenset):
        children = list(obj)
    else:
        children = list(getattr(obj, "__dict__", {}).values())
        slots = getattr(type(obj), "__slots__", ())
        children += [getattr(obj, s) for s in slots if hasattr(obj, s)]
    for child in children:
        found += reachable(child.__self__ if inspect.ismethod(child) else child, seen)
    return found


def test_the_shadow_executor_takes_no_broker_and_holds_none() -> None:
    params = set(inspect.signature(ShadowExecutor).parameters)
    assert not any("broker" in p or "tracker" in p or "executor" in p for p in params), params
    symbols = load_symbol_table(bundled_data_dir() / "symbol_properties.csv")
    clock = LocalClock(SimClock(datetime(2013, 10, 7, 14, tzinfo=UTC)))
    shadow = ShadowExecutor(Handle(), Handle(), clock, symbols, PlanConfig())
    held = reachable(shadow)
    assert held, "walked nothing"
    for obj in held:
        methods = {m for m in BROKER_METHODS if callable(getattr(obj, m, None))}
        assert methods != BROKER_METHODS, f"{type(obj).__name__} looks like a broker"
        assert type(obj).__module__ not in BROKER_MODULES, type(obj)


def test_the_engine_two_module_imports_no_broker_code() -> None:
    source = Path(inspect.getfile(ShadowExecutor)).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not imported & BROKER_MODULES, imported & BROKER_MODULES
