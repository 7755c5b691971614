"""Experiment analytics: the one set of SQL the API and the notebook run over the event log,
and the statistics computed from what it returns (docs/experiments.md).

Every query reads the Parquet event log only. Its text holds one placeholder, `{events}`:
the relation of landed events, which `storage.analytics.events_relation` fills (the log's
live segments: no temp file, no range a compaction left twice counted twice), for the API
and the notebook alike. Filters are named parameters (`$name`), so the text is the same
whatever is filtered; `bind` picks the values a text uses. This module does no I/O.

Definitions (per arm: `A`, `B`, and `A_on_B`, Engine 1's closed positions on B's signals):

- a trade is a closed position (`position_closed`); its return is `return_pct`, it wins
  when `realised_pnl > 0`;
- win rate = wins / trades; average P&L = mean `realised_pnl`;
- expectancy = win rate × average winning return − loss rate × average losing return,
  i.e. the mean `return_pct` per trade (a fraction of the cost basis);
- profit factor = gross profit / gross loss (None when nothing lost);
- max drawdown = the largest fall of daily equity (P&L summed per New York trading date
  of `closed_at`, cumulated) from its running peak, the peak starting at 0;
- a unit is an assignment unit (`unit`, `symbol`, `timeframe`, `unit_key`); every unit
  assigned to the arm's variant counts, its return being the sum of `return_pct` of the
  arm's trades there (0 when it has none: not trading is an outcome too).

Significance compares B against A and B against A_on_B (the paired comparison): Welch's
t-test on per-unit returns and a two-proportion z-test on win rates (pooled standard
error for the test, unpooled for the interval), each with a two-sided p-value and a 95 %
interval for the difference B − control. Below `MIN_UNITS` units on either side the
answer is "insufficient sample": the t-distribution is a poor model of a mean of fewer
than about 30 skewed P&L figures. Trades inside one unit are not independent, so the
z-test's p-value is optimistic when units hold many trades; Welch on units is the test
of record.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from scipy import stats

from engine.read_models import MAX_PAGE

MIN_UNITS = 30
CONFIDENCE_LEVEL = 0.95
COMPARISONS = (("B", "A"), ("B", "A_on_B"))
Status = Literal["ok", "insufficient sample", "no variance"]
INSUFFICIENT: Status = "insufficient sample"

# --- decoding the event payloads (docs/experiments.md, "The events the analytics read") --

_ASSIGNED = (
    '{"experiment_id": "VARCHAR", "signal_id": "BIGINT", "variant": "VARCHAR", '
    '"bucket": "INTEGER", "unit": "VARCHAR", "unit_key": "VARCHAR", "split_pct": "DOUBLE", '
    '"symbol": "VARCHAR", "timeframe": "VARCHAR"}'
)
_CLOSED = (
    '{"signal_id": "BIGINT", "symbol": "VARCHAR", "realised_pnl": "DOUBLE", '
    '"cost_basis": "DOUBLE", "return_pct": "DOUBLE", "reason": "VARCHAR", '
    '"closed_at": "TIMESTAMPTZ", "experiment_id": "VARCHAR", "agents": "VARCHAR[]", '
    '"meta_confidence": "DOUBLE"}'
)
_OPENED = '{"experiment_id": "VARCHAR", "signal_id": "BIGINT", "symbol": "VARCHAR"}'
_DECIDED = (
    '{"experiment_id": "VARCHAR", "signal_id": "BIGINT", "agent": "VARCHAR", '
    '"bias": "VARCHAR", "confidence": "DOUBLE", "veto": "BOOLEAN"}'
)

# The decoded events. There is one `experiment_assigned` per (experiment, signal) and one
# `agent_decided` per (experiment, signal, agent): the Store writes each with its row of
# `experiments` / `agent_performance`, whose keys are those (migration 0007), so the
# queries do not deduplicate them again (that window cost a fifth of the results query).
ASSIGNED_SQL = f"""
SELECT seq, event_time AS assigned_at, p.experiment_id, p.signal_id, p.variant, p.bucket,
       p.unit, p.unit_key, p.split_pct, p.symbol, p.timeframe
FROM (
    SELECT seq, event_time, json_transform(payload, '{_ASSIGNED}') AS p
    FROM {{events}} WHERE kind = 'experiment_assigned'
)
WHERE $experiment_id::VARCHAR IS NULL OR p.experiment_id = $experiment_id::VARCHAR
"""

CLOSED_SQL = f"""
SELECT seq, stream, entity_id AS position_id, p.signal_id, p.symbol, p.realised_pnl,
       p.cost_basis, p.return_pct, p.reason, p.closed_at, p.experiment_id, p.agents,
       p.meta_confidence
FROM (
    SELECT seq, stream, entity_id, json_transform(payload, '{_CLOSED}') AS p
    FROM {{events}}
    WHERE kind = 'position_closed' AND stream IN ('positions', 'shadow_positions')
)
"""

_ASSIGNED_CTE = f"assigned AS ({ASSIGNED_SQL})"
_CLOSED_CTE = f"closed AS ({CLOSED_SQL})"

# --- experiment results --------------------------------------------------------------------

# The statistics of the results, from the decoded relations `assigned` and `closed` (the
# CTEs of `RESULTS_SQL`; a bench runs it on the same relations stored typed). Daily P&L is
# summed per UTC hour first and the hours put on their New York date: the same figure as
# converting every trade (New York is a whole number of hours off UTC), with one time-zone
# conversion per hour instead of per trade.
RESULTS_STATS_SQL = """
trades AS (
    SELECT CASE a.variant WHEN 'A' THEN 'A' ELSE 'A_on_B' END AS arm, a.unit, a.symbol,
           a.timeframe, a.unit_key, c.realised_pnl, c.return_pct, c.closed_at
    FROM assigned a JOIN closed c ON c.signal_id = a.signal_id
    WHERE c.stream = 'positions' AND a.variant IN ('A', 'B')
    UNION ALL
    SELECT 'B', a.unit, a.symbol, a.timeframe, a.unit_key, c.realised_pnl, c.return_pct,
           c.closed_at
    FROM assigned a
    JOIN closed c ON c.signal_id = a.signal_id AND c.experiment_id = a.experiment_id
    WHERE c.stream = 'shadow_positions' AND a.variant = 'B'
),
arm_of(arm, variant) AS (VALUES ('A', 'A'), ('B', 'B'), ('A_on_B', 'B')),
units AS (
    SELECT variant, unit, symbol, timeframe, unit_key, count(*) AS signals
    FROM assigned GROUP BY ALL
),
unit_returns AS (
    SELECT o.arm, u.signals, coalesce(r.ret, 0.0) AS ret
    FROM arm_of o JOIN units u USING (variant)
    LEFT JOIN (
        SELECT arm, unit, symbol, timeframe, unit_key, sum(return_pct) AS ret
        FROM trades GROUP BY ALL
    ) r ON r.arm = o.arm AND r.unit = u.unit AND r.symbol = u.symbol
       AND r.timeframe = u.timeframe AND r.unit_key = u.unit_key
),
per_unit AS (
    SELECT arm, sum(signals) AS signals, count(*) AS units, avg(ret) AS unit_mean,
           var_samp(ret) AS unit_var
    FROM unit_returns GROUP BY arm
),
per_trade AS (
    SELECT arm, count(*) AS trades, count(*) FILTER (realised_pnl > 0) AS wins,
           sum(realised_pnl) AS total_pnl, avg(realised_pnl) AS avg_pnl,
           avg(return_pct) AS expectancy,
           coalesce(sum(realised_pnl) FILTER (realised_pnl > 0), 0.0) AS gross_profit,
           coalesce(-sum(realised_pnl) FILTER (realised_pnl < 0), 0.0) AS gross_loss
    FROM trades GROUP BY arm
),
hourly AS (
    SELECT arm, CAST(epoch(closed_at) // 3600 AS BIGINT) AS hour, sum(realised_pnl) AS pnl
    FROM trades GROUP BY ALL
),
daily AS (
    SELECT arm, CAST(timezone('America/New_York', to_timestamp(hour * 3600)) AS DATE) AS day,
           sum(pnl) AS pnl
    FROM hourly GROUP BY ALL
),
equity AS (
    SELECT arm, day,
           sum(pnl) OVER (PARTITION BY arm ORDER BY day ROWS UNBOUNDED PRECEDING) AS eq
    FROM daily
),
drawdown AS (
    SELECT arm, max(peak - eq) AS max_drawdown, count(*) AS days
    FROM (
        SELECT arm, eq,
               greatest(0.0, max(eq) OVER (PARTITION BY arm ORDER BY day
                                           ROWS UNBOUNDED PRECEDING)) AS peak
        FROM equity
    )
    GROUP BY arm
)
SELECT arm, coalesce(signals, 0) AS signals, coalesce(units, 0) AS units,
       coalesce(trades, 0) AS trades, coalesce(wins, 0) AS wins, total_pnl, avg_pnl,
       expectancy, coalesce(gross_profit, 0.0) AS gross_profit,
       coalesce(gross_loss, 0.0) AS gross_loss, coalesce(max_drawdown, 0.0) AS max_drawdown,
       coalesce(days, 0) AS days, unit_mean, unit_var
FROM arm_of
LEFT JOIN per_unit USING (arm) LEFT JOIN per_trade USING (arm) LEFT JOIN drawdown USING (arm)
ORDER BY arm
"""

RESULTS_SQL = f"WITH {_ASSIGNED_CTE},\n{_CLOSED_CTE},\n{RESULTS_STATS_SQL}"

# --- agent performance -----------------------------------------------------------------------

# An agent "backs" a trade
# when it is in the shadow position's `agents` (its bias agreed with the trade). Its
# forecast that the trade wins is confidence/100 when it backed it, 1 − confidence/100
# when its bias was the other way; neutral votes forecast nothing.
AGENTS_SQL = f"""
WITH decided AS (
    SELECT p.experiment_id, p.signal_id, p.agent, p.bias, p.confidence
    FROM (
        SELECT seq, event_time, json_transform(payload, '{_DECIDED}') AS p
        FROM {{events}} WHERE kind = 'agent_decided'
    )
    WHERE ($experiment_id::VARCHAR IS NULL OR p.experiment_id = $experiment_id::VARCHAR)
      AND ($agent::VARCHAR IS NULL OR p.agent = $agent::VARCHAR)
      AND ($since::TIMESTAMPTZ IS NULL OR event_time >= $since::TIMESTAMPTZ)
      AND ($until::TIMESTAMPTZ IS NULL OR event_time < $until::TIMESTAMPTZ)
),
{_CLOSED_CTE},
scored AS (
    SELECT d.agent, d.bias, d.confidence, c.realised_pnl, c.return_pct,
           list_contains(c.agents, d.agent) AS backed, c.realised_pnl > 0 AS won
    FROM decided d
    JOIN closed c ON c.signal_id = d.signal_id AND c.experiment_id = d.experiment_id
    WHERE c.stream = 'shadow_positions'
),
activations AS (SELECT agent, count(*) AS activations FROM decided GROUP BY agent),
backed AS (
    SELECT agent, count(*) AS trades, count(*) FILTER (won) AS wins,
           avg(realised_pnl) AS avg_pnl, avg(return_pct) AS expectancy
    FROM scored WHERE backed GROUP BY agent
),
forecasts AS (
    SELECT agent, least(floor(confidence / 10) * 10, 90) AS bucket,
           confidence / 100.0 AS forecast, CAST(backed = won AS INTEGER) AS hit
    FROM scored WHERE bias IN ('long', 'short') AND confidence IS NOT NULL
),
brier AS (
    SELECT agent, count(*) AS forecasts, avg((forecast - hit) ^ 2) AS brier
    FROM forecasts GROUP BY agent
),
calibration AS (
    SELECT agent, list({{'bucket': bucket, 'n': n, 'mean_forecast': mean_forecast,
                         'hit_rate': hit_rate}} ORDER BY bucket) AS calibration
    FROM (
        SELECT agent, CAST(bucket AS INTEGER) AS bucket, count(*) AS n,
               avg(forecast) AS mean_forecast, avg(hit) AS hit_rate
        FROM forecasts GROUP BY ALL
    )
    GROUP BY agent
)
SELECT agent, activations, coalesce(trades, 0) AS trades, coalesce(wins, 0) AS wins,
       avg_pnl, expectancy, coalesce(forecasts, 0) AS forecasts, brier, calibration
FROM activations
LEFT JOIN backed USING (agent) LEFT JOIN brier USING (agent)
LEFT JOIN calibration USING (agent)
ORDER BY agent
"""

# --- lists (paged, newest first) -------------------------------------------------------------

EXPERIMENTS_SQL = f"""
WITH {_ASSIGNED_CTE}
SELECT seq, assigned_at, experiment_id, signal_id, variant, bucket, unit, unit_key, split_pct,
       symbol, timeframe
FROM assigned
WHERE ($symbol::VARCHAR IS NULL OR symbol = $symbol::VARCHAR)
  AND ($variant::VARCHAR IS NULL OR variant = $variant::VARCHAR)
  AND ($since::TIMESTAMPTZ IS NULL OR assigned_at >= $since::TIMESTAMPTZ)
  AND ($until::TIMESTAMPTZ IS NULL OR assigned_at < $until::TIMESTAMPTZ)
ORDER BY assigned_at DESC, seq DESC
LIMIT $limit OFFSET $offset
"""

SHADOW_TRADES_SQL = f"""
WITH {_CLOSED_CTE}
SELECT position_id, experiment_id, signal_id, symbol, realised_pnl, cost_basis, return_pct,
       reason AS exit_reason, closed_at, agents, meta_confidence
FROM closed
WHERE stream = 'shadow_positions'
  AND ($experiment_id::VARCHAR IS NULL OR experiment_id = $experiment_id::VARCHAR)
  AND ($symbol::VARCHAR IS NULL OR symbol = $symbol::VARCHAR)
  AND ($agent::VARCHAR IS NULL OR list_contains(agents, $agent::VARCHAR))
  AND ($since::TIMESTAMPTZ IS NULL OR closed_at >= $since::TIMESTAMPTZ)
  AND ($until::TIMESTAMPTZ IS NULL OR closed_at < $until::TIMESTAMPTZ)
ORDER BY closed_at DESC, seq DESC
LIMIT $limit OFFSET $offset
"""

# Open shadow positions are `position_opened` events with no `position_closed` for the
# same position id (the event's entity_id).
SHADOW_POSITIONS_SQL = f"""
WITH {_CLOSED_CTE},
opened AS (
    SELECT seq, entity_id AS position_id, event_time AS opened_at, p.experiment_id,
           p.signal_id, p.symbol
    FROM (
        SELECT seq, entity_id, event_time, json_transform(payload, '{_OPENED}') AS p
        FROM {{events}} WHERE kind = 'position_opened' AND stream = 'shadow_positions'
    )
),
positions AS (
    SELECT coalesce(o.position_id, c.position_id) AS position_id,
           CASE WHEN c.position_id IS NULL THEN 'open' ELSE 'closed' END AS status,
           coalesce(c.experiment_id, o.experiment_id) AS experiment_id,
           coalesce(c.signal_id, o.signal_id) AS signal_id,
           coalesce(c.symbol, o.symbol) AS symbol, o.opened_at, c.closed_at,
           c.realised_pnl, c.return_pct, c.reason AS exit_reason, c.agents,
           c.meta_confidence, greatest(o.seq, c.seq) AS seq
    FROM opened o
    FULL JOIN (SELECT * FROM closed WHERE stream = 'shadow_positions') c
           ON c.position_id = o.position_id
)
SELECT position_id, status, experiment_id, signal_id, symbol, opened_at, closed_at,
       realised_pnl, return_pct, exit_reason, agents, meta_confidence
FROM positions
WHERE ($experiment_id::VARCHAR IS NULL OR experiment_id = $experiment_id::VARCHAR)
  AND ($status::VARCHAR IS NULL OR status = $status::VARCHAR)
  AND ($symbol::VARCHAR IS NULL OR symbol = $symbol::VARCHAR)
  AND ($since::TIMESTAMPTZ IS NULL OR coalesce(opened_at, closed_at) >= $since::TIMESTAMPTZ)
  AND ($until::TIMESTAMPTZ IS NULL OR coalesce(opened_at, closed_at) < $until::TIMESTAMPTZ)
ORDER BY coalesce(opened_at, closed_at) DESC, seq DESC
LIMIT $limit OFFSET $offset
"""

_PARAM = re.compile(r"\$([a-z_]+)")


def render(template: str, events: str) -> str:
    """The SQL text of `template` reading `events` (a relation: a table name or a
    parenthesised SELECT, e.g. `storage.eventlog.events_sql` in brackets)."""
    return template.replace("{events}", events)


def bind(sql: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The named parameters `sql` uses, from `values` (None where absent)."""
    return {name: values.get(name) for name in sorted(set(_PARAM.findall(sql)))}


@dataclass(frozen=True)
class ListFilter:
    """Filters and page of the list queries; a query ignores those it has no use for.
    `since` is inclusive, `until` exclusive."""

    experiment_id: str | None = None
    symbol: str | None = None
    variant: Literal["A", "B"] | None = None
    agent: str | None = None
    status: Literal["open", "closed"] | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    offset: int = 0

    def values(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "symbol": self.symbol,
            "variant": self.variant,
            "agent": self.agent,
            "status": self.status,
            "since": self.since,
            "until": self.until,
            "limit": max(1, min(self.limit, MAX_PAGE)),
            "offset": max(0, self.offset),
        }


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmStats:
    """One arm's figures (see the module docstring for each definition)."""

    arm: str
    signals: int
    units: int
    trades: int
    wins: int
    win_rate: float | None
    total_pnl: float
    avg_pnl: float | None
    expectancy: float | None
    gross_profit: float
    gross_loss: float
    profit_factor: float | None
    max_drawdown: float
    days: int
    unit_mean_return: float | None
    unit_var_return: float | None


@dataclass(frozen=True)
class Significance:
    """A two-sided test of treatment − control: the estimate, its statistic, p-value and
    95 % interval; all None when `status` is not "ok"."""

    test: Literal["welch_t", "two_proportion_z"]
    status: Status
    n_treatment: int
    n_control: int
    estimate: float | None = None
    statistic: float | None = None
    p_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    df: float | None = None


@dataclass(frozen=True)
class Comparison:
    treatment: str
    control: str
    welch: Significance
    win_rate: Significance


@dataclass(frozen=True)
class ExperimentResults:
    """`GET /experiments/{id}/results`: the arms A, B and A_on_B, and B against A and
    against A_on_B (the paired comparison on B's share)."""

    experiment_id: str
    min_units: int
    arms: dict[str, ArmStats]
    comparisons: tuple[Comparison, ...]


def arm_stats(row: Mapping[str, Any]) -> ArmStats:
    """An arm from one row of `RESULTS_SQL`."""
    trades, wins = int(row["trades"]), int(row["wins"])
    gross_profit, gross_loss = float(row["gross_profit"]), float(row["gross_loss"])
    return ArmStats(
        arm=str(row["arm"]),
        signals=int(row["signals"]),
        units=int(row["units"]),
        trades=trades,
        wins=wins,
        win_rate=wins / trades if trades else None,
        total_pnl=float(row["total_pnl"] or 0.0),
        avg_pnl=_opt(row["avg_pnl"]),
        expectancy=_opt(row["expectancy"]),
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        profit_factor=gross_profit / gross_loss if gross_loss > 0 else None,
        max_drawdown=float(row["max_drawdown"]),
        days=int(row["days"]),
        unit_mean_return=_opt(row["unit_mean"]),
        unit_var_return=_opt(row["unit_var"]),
    )


def welch_test(treatment: ArmStats, control: ArmStats, min_units: int = MIN_UNITS) -> Significance:
    """Welch's t-test on per-unit returns, from each side's count, mean and variance."""
    n1, n2 = treatment.units, control.units
    if min(n1, n2) < max(min_units, 2):
        return Significance("welch_t", INSUFFICIENT, n1, n2)
    m1, m2 = treatment.unit_mean_return or 0.0, control.unit_mean_return or 0.0
    a, b = (treatment.unit_var_return or 0.0) / n1, (control.unit_var_return or 0.0) / n2
    se = math.sqrt(a + b)
    if se == 0:
        return Significance("welch_t", "no variance", n1, n2, estimate=m1 - m2)
    df = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n2 - 1))
    t = (m1 - m2) / se
    half = float(stats.t.ppf(0.5 + CONFIDENCE_LEVEL / 2, df)) * se
    p = float(2 * stats.t.sf(abs(t), df))
    return Significance("welch_t", "ok", n1, n2, m1 - m2, t, p, m1 - m2 - half, m1 - m2 + half, df)


def proportions_z_test(
    wins1: int, n1: int, wins2: int, n2: int
) -> tuple[float, float, float, float, float]:
    """Two-proportion z-test of p1 − p2: (difference, z, two-sided p, CI low, CI high).

    z uses the pooled standard error (as statsmodels' `proportions_ztest`); the interval
    the unpooled (Wald) one. With no variance at all (every trade won, or none), z is 0
    and p is 1."""
    p1, p2 = wins1 / n1, wins2 / n2
    pooled = (wins1 + wins2) / (n1 + n2)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (p1 - p2) / se0 if se0 > 0 else 0.0
    p = float(2 * stats.norm.sf(abs(z)))
    half = float(stats.norm.ppf(0.5 + CONFIDENCE_LEVEL / 2)) * math.sqrt(
        p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    )
    return p1 - p2, z, p, p1 - p2 - half, p1 - p2 + half


def win_rate_test(
    treatment: ArmStats, control: ArmStats, min_units: int = MIN_UNITS
) -> Significance:
    """The z-test on win rates, when both sides have `min_units` units and a trade."""
    n1, n2 = treatment.units, control.units
    if min(n1, n2) < min_units or not (treatment.trades and control.trades):
        return Significance("two_proportion_z", INSUFFICIENT, n1, n2)
    diff, z, p, low, high = proportions_z_test(
        treatment.wins, treatment.trades, control.wins, control.trades
    )
    return Significance("two_proportion_z", "ok", n1, n2, diff, z, p, low, high)


def experiment_results(
    experiment_id: str, rows: Sequence[Mapping[str, Any]], min_units: int = MIN_UNITS
) -> ExperimentResults:
    """The results from the rows of `RESULTS_SQL` (one per arm)."""
    arms = {arm.arm: arm for arm in map(arm_stats, rows)}
    comparisons = tuple(
        Comparison(
            t,
            c,
            welch_test(arms[t], arms[c], min_units),
            win_rate_test(arms[t], arms[c], min_units),
        )
        for t, c in COMPARISONS
    )
    return ExperimentResults(experiment_id, min_units, arms, comparisons)


# --- agents --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationBucket:
    """Directional votes with confidence in [bucket, bucket + 10) (90 holds 100): their
    mean forecast (confidence/100) against how often the agent was right."""

    bucket: int
    n: int
    mean_forecast: float
    hit_rate: float


@dataclass(frozen=True)
class AgentPerformance:
    """One agent: its activations (votes); the closed shadow trades it backed (wins,
    average P&L, expectancy); and its directional votes on closed shadow trades scored as
    forecasts (Brier score, calibration by confidence bucket)."""

    agent: str
    activations: int
    trades: int
    wins: int
    win_rate: float | None
    avg_pnl: float | None
    expectancy: float | None
    forecasts: int
    brier: float | None
    calibration: tuple[CalibrationBucket, ...]


def agent_performance(row: Mapping[str, Any]) -> AgentPerformance:
    """An agent from one row of `AGENTS_SQL`."""
    trades, wins = int(row["trades"]), int(row["wins"])
    buckets = tuple(
        CalibrationBucket(
            int(b["bucket"]), int(b["n"]), float(b["mean_forecast"]), float(b["hit_rate"])
        )
        for b in row["calibration"] or ()
    )
    return AgentPerformance(
        agent=str(row["agent"]),
        activations=int(row["activations"]),
        trades=trades,
        wins=wins,
        win_rate=wins / trades if trades else None,
        avg_pnl=_opt(row["avg_pnl"]),
        expectancy=_opt(row["expectancy"]),
        forecasts=int(row["forecasts"]),
        brier=_opt(row["brier"]),
        calibration=buckets,
    )


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)
