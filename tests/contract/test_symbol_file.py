"""The symbol-properties file adapter, against real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.adapters.symbol_file import load_symbol_table
from engine.errors import Fatal
from engine.symbols import option_tick, strike_grid, validate_order

REPO_TABLE = Path(__file__).resolve().parents[2] / "data" / "symbol_properties.csv"


def test_repository_table_loads_with_expected_rules() -> None:
    table = load_symbol_table(REPO_TABLE)
    assert {"SPY", "QQQ", "IWM", "AAPL", "GOOG"} <= set(table.symbols())
    for etf in ("SPY", "QQQ", "IWM"):
        props = table.get(etf)
        assert option_tick(props, 0.5) == 0.01
        assert option_tick(props, 25.0) == 0.01
        assert props.option_multiplier == 100
        assert props.strike_step_near == 1.0
    aapl = table.get("AAPL")
    assert (option_tick(aapl, 2.99), option_tick(aapl, 3.0)) == (0.01, 0.05)
    unlisted = table.get("MSFT")
    assert unlisted.symbol == "MSFT"
    assert (option_tick(unlisted, 1.0), option_tick(unlisted, 5.0)) == (0.01, 0.05)
    assert (unlisted.equity_lot, unlisted.option_multiplier) == (1, 100)
    validate_order(table.get("SPY"), 168.37, 10, is_option=False)
    assert 168.0 in strike_grid(table.get("SPY"), 168.3, 0.05)


def test_blank_cells_take_defaults(tmp_path: Path) -> None:
    path = tmp_path / "symbols.csv"
    path.write_text("symbol,option_tick_above,option_multiplier\nXYZ,0.01,\n", encoding="utf-8")
    props = load_symbol_table(path).get("XYZ")
    assert props.option_tick_above == 0.01
    assert props.option_multiplier == 100


@pytest.mark.parametrize(
    "text",
    [
        "symbol,option_tik_above\nXYZ,0.01\n",  # misspelt column
        "ticker,option_tick_above\nXYZ,0.01\n",  # no symbol column
        "",  # no header at all
        "symbol,option_lot\nXYZ,lots\n",  # value does not parse
    ],
)
def test_malformed_files_are_fatal(tmp_path: Path, text: str) -> None:
    path = tmp_path / "symbols.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(Fatal):
        load_symbol_table(path)


def test_missing_file_is_fatal(tmp_path: Path) -> None:
    with pytest.raises(Fatal) as info:
        load_symbol_table(tmp_path / "absent.csv")
    assert "absent.csv" in str(info.value)
