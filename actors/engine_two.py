"""Engine 2, the shadow path: StrategyRouter → agent actors → meta-decision → ShadowExecutor.

- `StrategyRouter.route(signal)` runs for every signal the SignalProcessor has decided
  (Engine 1 trades what it approves whatever happens here). It assigns the variant
  (`engine.router`). For a B entry it builds the enrichment once, puts it in Ray's object
  store and sends the same `ObjectRef` to every agent actor, weighs their votes
  (`engine.meta`) and, when the meta-decision says trade, has the ShadowExecutor open a
  shadow position. An exit alert closes the open shadow positions of its symbol and
  strategy, whatever its own variant. The assignment, every vote and the decision are
  written at the end, in one transaction with their events: a signal with an
  `experiments` row has been routed completely, and a crash before it means route again
  (the shadow position's key keeps that from opening twice).
- `AgentActor` runs one agent (`engine.meta.cast_vote`).
- `ShadowExecutor` plans with Engine 1's planning function and fills with the paper fill
  code (`engine.paper_broker.PaperFills`), at real (replayed or vendor) prices. It holds no
  broker handle, of any kind. It marks its positions and exits them by the same exit rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from actors.clock import ClockLink
from actors.marketdata import RemoteMarket
from actors.pipeline import StoreReader, isolated, plan_signal_entry, position_from_row
from engine.agents.base import Agent, AgentDecision, Enrichment
from engine.calendar import session_close_at, xnys_calendar
from engine.clock import ensure_utc
from engine.enrichment import Portfolio, build_enrichment
from engine.errors import Conflict, Rejected, Retryable
from engine.events import Event
from engine.exits import exit_reason
from engine.fills import Fill
from engine.flags import ENABLE_VARIANT_B, FlagsSnapshot
from engine.meta import MetaConfig, MetaDecision, cast_vote, decide, decision_payload
from engine.orders import PlanConfig, PlannedOrder, plan_exit
from engine.paper_broker import PaperFills
from engine.positions import Position, mark
from engine.router import Assignment, Unit, assign
from engine.symbols import SymbolTable
from storage.snapshots import write_snapshot
from storage.writes import AppendEvents, IdOf, Insert, Several, Update

Write = Insert | Update | AppendEvents

log = logging.getLogger(__name__)

SHADOW = "shadow"
STREAM = "engine2"
SHADOW_STREAM = "shadow_positions"


def _key(experiment_id: str, signal_id: int) -> str:
    return f"{experiment_id}/{signal_id}"


def enrichment_digest(enrichment: Enrichment) -> str:
    """SHA-256 of the enrichment's canonical JSON: what the agents saw, named exactly."""
    text = json.dumps(asdict(enrichment), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class AgentActor:
    """One agent as an actor: its vote on an enrichment (a shared object-store value)."""

    def __init__(self, agent: Agent) -> None:
        self._agent = agent

    async def vote(self, enrichment: Enrichment, flags: Mapping[str, bool]) -> AgentDecision | None:
        return cast_vote(self._agent, enrichment, flags)

    async def name(self) -> str:
        return self._agent.name


@dataclass(frozen=True)
class RouterConfig:
    experiment_id: str = "ab-1"
    unit: Unit = "session"
    first_session: date | None = None  # the replay's first bundled day
    meta: MetaConfig = field(default_factory=MetaConfig)
    snapshots: str | None = None  # where enrichment snapshots go (None: not kept)


class StrategyRouter:
    def __init__(  # noqa: PLR0917
        self,
        store: Any,
        marketdata: Any,
        flags: Any,
        agents: Mapping[str, Any],
        shadow: Any,
        clock: ClockLink,
        config: RouterConfig,
        put: Callable[[Any], Any] | None = None,
    ) -> None:
        self._read = StoreReader(store)
        self._store = store
        self._md = marketdata
        self._flags = flags
        self._agents = dict(agents)
        self._shadow = shadow
        self._clock = clock
        self._config = config
        self._calendar = xnys_calendar()
        self._put = put
        self._routing: set[int] = set()

    async def route(self, signal_id: int, signal: dict[str, Any] | None = None) -> str:
        """Assign the signal and run the shadow path for a B entry; the variant."""
        if signal_id in self._routing:
            return "routing"
        self._routing.add(signal_id)
        try:
            return await self._route(signal_id, signal)
        finally:
            self._routing.discard(signal_id)

    async def _route(self, signal_id: int, signal: dict[str, Any] | None) -> str:
        """The processor's message carries the signal it has just decided, once: it is not
        routed yet. A sweep or a repeat passes the id alone and is checked first (the
        assignment's unique key refuses a second record either way)."""
        if signal is None:
            done = await self._read.one(
                "SELECT variant FROM experiments WHERE experiment_id = ? AND signal_id = ?",
                [self._config.experiment_id, signal_id],
            )
            if done is not None:
                return str(done["variant"])
            signal = await self._read.one("SELECT * FROM signals WHERE signal_id = ?", [signal_id])
            if signal is None:
                raise Rejected("not_found", f"no signal {signal_id}")
        snapshot: FlagsSnapshot = await self._flags.current.remote()
        received: datetime = ensure_utc(signal["received_at"])
        assignment = assign(
            experiment_id=self._config.experiment_id,
            signal_id=signal_id,
            symbol=signal["symbol"],
            timeframe=signal["timeframe"],
            session=self._calendar.session_date(received),
            split_pct=snapshot.experiment.split_pct,
            master_on=snapshot.flags.enabled(ENABLE_VARIANT_B, signal["symbol"]),
            unit=self._config.unit,
        )
        parts: list[Write] = []
        if signal["action"] == "exit":
            await self._shadow.exit_signal.remote(signal)
        elif assignment.variant == "B":
            try:
                parts = await self._shadow_path(signal, assignment, snapshot)
            except Rejected as exc:  # no data to decide on: B records that it did not
                ids = {"experiment_id": assignment.experiment_id, "signal_id": signal_id}
                failed = Event(
                    "enrichment_failed",
                    STREAM,
                    await self._clock.now(),
                    {**ids, "reason": exc.code, "detail": str(exc.detail)},
                    _key(assignment.experiment_id, signal_id),
                )
                parts = [AppendEvents((failed,))]
        parts.insert(0, _assignment_write(assignment, signal, await self._clock.now()))
        with contextlib.suppress(Conflict):  # routed by a sweep meanwhile: its record stands
            await self._store.write.remote(Several(tuple(parts)))
        return assignment.variant

    async def _shadow_path(
        self, signal: dict[str, Any], assignment: Assignment, snapshot: FlagsSnapshot
    ) -> list[Write]:
        symbol = signal["symbol"]
        received = ensure_utc(signal["received_at"])
        enrichment = await build_enrichment(
            RemoteMarket(self._md),
            self._calendar,
            signal_id=int(signal["signal_id"]),
            symbol=symbol,
            direction=signal["direction"],
            timeframe=signal["timeframe"],
            as_of=received,
            portfolio=await self._portfolio(received),
            first_session=self._config.first_session,
        )
        enriched_at = await self._clock.now()
        ref = self._put(enrichment) if self._put is not None else enrichment
        flags = snapshot.flags.for_symbol(symbol)
        votes = await asyncio.gather(*(a.vote.remote(ref, flags) for a in self._agents.values()))
        decisions = [v for v in votes if v is not None]
        voted_at = await self._clock.now()
        meta = decide(int(signal["signal_id"]), signal["direction"], decisions, self._config.meta)
        digest = enrichment_digest(enrichment)
        kept = None
        if self._config.snapshots is not None:
            kept = write_snapshot(Path(self._config.snapshots), enrichment, digest).name
        if meta.trade:
            await self._shadow.open.remote(signal, assignment.experiment_id, _summary(meta))
        decided_at = await self._clock.now()
        return _decision_writes(
            assignment,
            meta,
            {"sha256": digest, "snapshot": kept, "flags": dict(flags)},
            (received, enriched_at, voted_at, decided_at),
        )

    async def _portfolio(self, at: datetime) -> Portfolio:
        rows = await self._read.rows(
            "SELECT * FROM shadow_positions WHERE status = 'open' AND experiment_id = ?",
            [self._config.experiment_id],
        )
        positions = tuple(shadow_position(r) for r in rows)
        limits = await self._read.risk_limits(at)
        return Portfolio(
            open_positions=positions,
            limits=limits,
            capital_needed=limits.capital_available * limits.per_trade_risk_pct,
        )

    async def tick(self, now: datetime) -> int:
        """Sweep: route decided signals that have no assignment yet."""
        rows = await self._read.rows(
            "SELECT s.signal_id FROM signals s WHERE s.status <> 'received' AND NOT EXISTS "
            "(SELECT 1 FROM experiments e WHERE e.signal_id = s.signal_id "
            "AND e.experiment_id = ?) ORDER BY s.signal_id",
            [self._config.experiment_id],
        )
        for row in rows:
            await isolated(self.route(int(row["signal_id"])), "signal", row["signal_id"])
        return len(rows)


def _summary(meta: MetaDecision) -> dict[str, Any]:
    agreeing = sorted(d.agent for d in meta.inputs if d.bias == meta.bias and not d.veto)
    return {"meta_confidence": meta.weighted_confidence, "agents": agreeing}


def _assignment_write(assignment: Assignment, signal: dict[str, Any], at: datetime) -> Insert:
    payload = {
        **asdict(assignment),
        "symbol": signal["symbol"],
        "timeframe": signal["timeframe"],
    }
    row = {**payload, "assigned_at": at}
    event = Event(
        "experiment_assigned",
        "experiments",
        at,
        payload,
        _key(assignment.experiment_id, assignment.signal_id),
    )
    return Insert("experiments", (row,), unique=(("experiment_id", "signal_id"),), events=(event,))


def _decision_writes(
    assignment: Assignment,
    meta: MetaDecision,
    enrichment: dict[str, Any],
    times: tuple[datetime, datetime, datetime, datetime],
) -> list[Write]:
    """The votes and the decision: `enrichment` names the snapshot the agents saw (its
    SHA-256, its file, the flags they were given)."""
    digest = enrichment["sha256"]
    received, enriched, voted, decided = times
    key = _key(assignment.experiment_id, assignment.signal_id)
    ids = {"experiment_id": assignment.experiment_id, "signal_id": assignment.signal_id}
    events = [
        Event(
            "enrichment_complete",
            STREAM,
            enriched,
            {**ids, **enrichment, "signal_received_at": received.isoformat()},
            key,
        ),
        *(
            Event("agent_decided", STREAM, voted, {**ids, **decision_payload(d)}, key)
            for d in meta.inputs
        ),
        Event(
            "meta_decided",
            STREAM,
            decided,
            {
                **ids,
                **meta.to_payload(),
                "confidence": meta.weighted_confidence,
                "enrichment_sha256": digest,
                "timestamps": {
                    "signal_received": received.isoformat(),
                    "enrichment_complete": enriched.isoformat(),
                    "agents_complete": voted.isoformat(),
                    "decision_final": decided.isoformat(),
                },
            },
            key,
        ),
    ]
    rows = tuple(
        {
            **ids,
            "agent": d.agent,
            "agent_group": d.group,
            "bias": d.bias,
            "confidence": d.confidence,
            "veto": d.veto,
            "version": d.version,
            "decided_at": voted,
        }
        for d in meta.inputs
    )
    if not rows:
        return [AppendEvents(tuple(events))]
    unique = (("experiment_id", "signal_id", "agent"),)
    return [Insert("agent_performance", rows, unique=unique, events=tuple(events))]


def shadow_position(r: Mapping[str, Any]) -> Position:
    """A `shadow_positions` row as a `Position` (the same reading as Engine 1's rows)."""
    return position_from_row({**r, "engine": SHADOW})


class ShadowExecutor:
    """Shadow positions by Engine 1's planning and paper fill code; never a broker."""

    def __init__(  # noqa: PLR0917
        self,
        store: Any,
        marketdata: Any,
        clock: ClockLink,
        symbols: SymbolTable,
        plan: PlanConfig,
        slippage_ticks: int = 1,
    ) -> None:
        self._read = StoreReader(store)
        self._store = store
        self._md = marketdata
        self._clock = clock
        self._symbols = symbols
        self._plan = plan
        self._fills = PaperFills(
            RemoteMarket(marketdata), clock.now, clock.sleep, symbols, slippage_ticks=slippage_ticks
        )
        self._calendar = xnys_calendar()
        self._locks: dict[str, asyncio.Lock] = {}

    async def open(
        self, signal: dict[str, Any], experiment_id: str, attribution: dict[str, Any]
    ) -> int | None:
        """Plan and fill the entry B decided on; the shadow position's id (None: refused,
        or the kill switch is on: B opens nothing then either)."""
        at = ensure_utc(signal["received_at"])
        if await self._read.kill_switch_on():
            log.info("shadow entry for signal %s not taken: kill switch on", signal["signal_id"])
            return None
        try:
            order = await plan_signal_entry(
                self._md, self._read, self._symbols, self._plan, signal, at, engine=SHADOW
            )
            fill = await self._fills.fill(order)
        except (Rejected, Retryable) as exc:
            log.info("shadow entry for signal %s not taken: %s", signal["signal_id"], exc)
            return None
        position = {
            "experiment_id": experiment_id,
            "signal_id": signal["signal_id"],
            "idempotency_key": order.idempotency_key,
            "symbol": order.symbol,
            "instrument": order.instrument,
            "asset_class": order.asset_class,
            "option_right": None if order.right is None else str(order.right),
            "strike": order.strike,
            "expiry": order.expiry,
            "strategy": signal["strategy"],
            "side": order.position_side,
            "quantity": fill.quantity,
            "avg_price": fill.price,
            "multiplier": order.multiplier,
            "status": "open",
            "opened_at": fill.filled_at,
            "mark": fill.price,
            "marked_at": fill.filled_at,
            "unrealised_pnl": 0.0,
            "realised_pnl": 0.0,
            "meta_confidence": float(attribution["meta_confidence"]),
            "agents": json.dumps(attribution["agents"]),
        }
        opened = Event(
            "position_opened",
            SHADOW_STREAM,
            fill.filled_at,
            {
                "engine": SHADOW,
                "experiment_id": experiment_id,
                "signal_id": signal["signal_id"],
                "symbol": order.symbol,
                "instrument": order.instrument,
                "price": fill.price,
                "quantity": fill.quantity,
                "cost_basis": fill.notional,
                **attribution,
            },
        )
        try:
            result = await self._store.write.remote(
                Several(
                    (
                        Insert(
                            "shadow_positions",
                            (position,),
                            id_column="position_id",
                            unique=(("idempotency_key",),),
                            events=(opened,),
                        ),
                        _trade_insert(order, fill, experiment_id, signal["signal_id"], IdOf(0)),
                    )
                )
            )
        except Conflict:
            return None  # opened already (a repeated route)
        return int(result.ids[0])

    async def exit_signal(self, signal: dict[str, Any]) -> int:
        """Close the open shadow positions of the exit alert's symbol (and strategy)."""
        rows = await self._read.rows(
            "SELECT * FROM shadow_positions WHERE status = 'open' AND symbol = ? "
            "AND strategy IS NOT DISTINCT FROM ?",
            [signal["symbol"], signal["strategy"]],
        )
        at = ensure_utc(signal["received_at"])
        closed = 0
        for row in rows:
            closed += await self._close(row, "exit_signal", at)
        return closed

    async def tick(self, now: datetime) -> dict[str, int]:
        """Mark every open shadow position as of `now` and close those an exit rule closes."""
        at = ensure_utc(now)
        rows = await self._read.rows("SELECT * FROM shadow_positions WHERE status = 'open'", [])
        if not rows:
            return {"marked": 0, "exits": 0}
        rules = await self._read.exit_rules()
        close = session_close_at(self._calendar, at)
        marks: list[Write] = []
        exits = 0
        for row in rows:
            position = shadow_position(row)
            try:
                m = mark(position, await self._mark_price(position, at), at)
            except (Rejected, Retryable) as exc:  # one position's mark; the others go on
                log.info("shadow position %s not marked: %s", row["position_id"], exc)
                continue
            reason = exit_reason(m, at, position.expiry, close, rules)
            if reason is not None:
                exits += await self._close(row, reason, at)
                continue
            marks.append(
                Update(
                    "shadow_positions",
                    {"position_id": row["position_id"], "status": "open"},
                    {"mark": m.mark, "marked_at": at, "unrealised_pnl": m.unrealised_pnl},
                )
            )
        if marks:  # every mark in one Store request
            await self._store.write.remote(Several(tuple(marks)))
        return {"marked": len(marks), "exits": exits}

    async def _mark_price(self, position: Position, at: datetime) -> float:
        contract = position.contract
        if contract is not None:
            quote = await self._md.option_quote.remote(contract, at)
            return float(quote.mid)
        return float((await self._md.quote.remote(position.symbol, at)).last)

    async def _close(self, row: dict[str, Any], reason: str, at: datetime) -> int:
        key = str(row["idempotency_key"])
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            current = await self._read.one(
                "SELECT status FROM shadow_positions WHERE position_id = ?", [row["position_id"]]
            )
            if current is None or current["status"] != "open":
                return 0
            position = shadow_position(row)
            order = plan_exit(position, at, reason)
            try:
                fill = await self._fills.fill(order)
            except (Rejected, Retryable) as exc:
                log.warning("shadow exit of %s failed: %s", row["position_id"], exc)
                return 0
            await self._store.write.remote(_close_writes(row, position, order, fill, reason))
            return 1


def _trade_insert(
    order: PlannedOrder, fill: Fill, experiment_id: str, signal_id: int, position_id: Any
) -> Insert:
    trade = {
        "position_id": position_id,
        "experiment_id": experiment_id,
        "signal_id": signal_id,
        "client_order_id": order.client_order_id,
        "intent": order.intent,
        "side": fill.side,
        "quantity": fill.quantity,
        "price": fill.price,
        "fees": fill.fees,
        "reference_price": fill.reference_price,
        "model": fill.model,
        "filled_at": fill.filled_at,
        "reason": order.reason,
    }
    return Insert("shadow_trades", (trade,), id_column="trade_id", unique=(("client_order_id",),))


def _close_writes(
    row: dict[str, Any], position: Position, order: PlannedOrder, fill: Fill, reason: str
) -> Several:
    gross = (fill.price - position.avg_price) * fill.quantity * position.multiplier * position.sign
    realised = gross - fill.fees
    basis = position.cost_basis
    event = Event(
        "position_closed",
        SHADOW_STREAM,
        fill.filled_at,
        {
            "engine": SHADOW,
            "experiment_id": row["experiment_id"],
            "signal_id": row["signal_id"],
            "symbol": position.symbol,
            "realised_pnl": realised,
            "cost_basis": basis,
            "return_pct": realised / basis if basis > 0 else 0.0,
            "reason": reason,
            "closed_at": fill.filled_at.isoformat(),
            "agents": json.loads(row["agents"]),
            "meta_confidence": row["meta_confidence"],
        },
        str(row["position_id"]),
    )
    values = {
        "status": "closed",
        "closed_at": fill.filled_at,
        "realised_pnl": realised,
        "unrealised_pnl": 0.0,
        "mark": fill.price,
        "marked_at": fill.filled_at,
        "exit_reason": reason,
    }
    return Several(
        (
            Update(
                "shadow_positions", {"position_id": row["position_id"]}, values, events=(event,)
            ),
            _trade_insert(order, fill, row["experiment_id"], row["signal_id"], row["position_id"]),
        )
    )
