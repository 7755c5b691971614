"""Reads the symbol-properties table (the repository's `data/symbol_properties.csv`).

A CSV with a header row naming `SymbolProperties` fields (`symbol` first); blank cells
take the defaults, a `*` row sets the default for unlisted symbols. Columns the table
does not know are refused, so a typo in a header cannot silently fall back to a default.
"""

from __future__ import annotations

import csv
from pathlib import Path

from engine.errors import Fatal
from engine.symbols import SymbolProperties, SymbolTable

_KNOWN_COLUMNS = frozenset(SymbolProperties.__dataclass_fields__)


def load_symbol_table(path: str | Path) -> SymbolTable:
    """Load a `SymbolTable` from a CSV file; `Fatal` if it is missing or malformed."""
    source = Path(path)
    try:
        with source.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            unknown = sorted(set(header) - _KNOWN_COLUMNS)
            if "symbol" not in header or unknown:
                raise Fatal(
                    f"bad header in symbol properties file {source}",
                    hint=f"needs a 'symbol' column; unknown columns: {unknown}",
                )
            rows = list(reader)
    except OSError as exc:
        raise Fatal(f"cannot read symbol properties file {source}: {exc}") from exc
    return SymbolTable.from_rows(rows)
