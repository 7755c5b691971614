"""ops/prometheus/tandem-alerts.yml: well-formed rules, each on a metric the code defines.

Ray exports a `ray.util.metrics` metric named `tandem_x` (actors/metrics.py adds the prefix)
as `ray_tandem_x`, and a histogram as `_bucket`, `_count` and `_sum` series.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "ops" / "prometheus" / "tandem-alerts.yml"
DEFINED = re.compile(r"\b(counter|histogram|gauge)\(\s*\"([a-z0-9_]+)\"", re.S)
USED = re.compile(r"\bray_tandem_([a-z0-9_]+)")
REQUIRED = {
    "TandemWorkerTickSlow",
    "TandemPipelineErrors",
    "TandemCircuitBreakerOpen",
    "TandemKillSwitchOn",
}


def defined_metrics() -> dict[str, str]:
    found: dict[str, str] = {}
    for package in ("actors", "api", "storage", "engine"):
        for path in (ROOT / package).rglob("*.py"):
            for kind, name in DEFINED.findall(path.read_text()):
                found[name] = kind
    return found


def rules() -> list[dict[str, object]]:
    loaded = yaml.safe_load(RULES.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def test_every_rule_is_complete_and_the_required_ones_are_there() -> None:
    found = rules()
    assert {str(r["alert"]) for r in found} >= REQUIRED
    for rule in found:
        assert rule["expr"] and rule["labels"]["severity"] in ("warning", "critical")  # type: ignore[index]
        assert rule["annotations"]["summary"]  # type: ignore[index]


def undefined(expr: str, defined: dict[str, str]) -> list[str]:
    """The `ray_tandem_*` series `expr` reads that no code defines."""
    missing = []
    for used in USED.findall(expr):
        base = re.sub(r"_(bucket|count|sum)$", "", used)
        if not (used in defined or (base in defined and defined[base] == "histogram")):
            missing.append(f"ray_tandem_{used}")
    return missing


def test_every_metric_a_rule_reads_is_defined_in_the_code() -> None:
    defined = defined_metrics()
    assert {"tick_seconds", "kill_switch_on", "pipeline_errors_total"} <= set(defined)
    for rule in rules():
        assert undefined(str(rule["expr"]), defined) == [], rule["alert"]


def test_the_check_catches_an_undefined_metric_or_a_wrong_suffix() -> None:
    defined = defined_metrics()
    expr = "rate(ray_tandem_no_such_total[5m]) > 0 or ray_tandem_kill_switch_on_bucket > 0"
    assert undefined(expr, defined) == [
        "ray_tandem_no_such_total",
        "ray_tandem_kill_switch_on_bucket",  # a gauge has no buckets
    ]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed here")
def test_promtool_accepts_the_rules() -> None:
    done = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
