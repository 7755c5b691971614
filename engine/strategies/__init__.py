"""Strategies that turn minute bars into TradingView alerts (rules: docs/strategies.md).

`base` defines a strategy's parameters, its input (`MinuteBars`) and its surface
(`Strategy`); `rules` the shared path from bars to alerts; `registry` the strategies by
name with their lifecycle. The four strategies: `ema_cross`, `vwap` (two variants),
`ttm_squeeze`.
"""

from engine.strategies.base import MinuteBars, Param, Strategy
from engine.strategies.registry import (
    StrategyRegistry,
    StrategyState,
    StrategyStatus,
    default_registry,
    default_strategies,
)

__all__ = [
    "MinuteBars",
    "Param",
    "Strategy",
    "StrategyRegistry",
    "StrategyState",
    "StrategyStatus",
    "default_registry",
    "default_strategies",
]
