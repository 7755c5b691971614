"""The panel of agents Engine 2 runs, in one place (the router's actors and the replay)."""

from __future__ import annotations

from engine.agents.base import Agent
from engine.agents.context import ContextAgent
from engine.agents.orb import OrbAgent
from engine.agents.risk import RiskAgent
from engine.agents.satyland import SatylandAgent
from engine.agents.strat import StratAgent
from engine.agents.technical import TechnicalAgent
from engine.agents.ttm import TtmAgent


def panel() -> list[Agent]:
    """Core (Technical, Context, Risk), specialists (ORB, Strat, TTM), sub-agent
    (Satyland). Which of them vote on a signal is each agent's activation rule."""
    return [
        TechnicalAgent(),
        ContextAgent(),
        RiskAgent(),
        OrbAgent(),
        StratAgent(),
        TtmAgent(),
        SatylandAgent(),
    ]
