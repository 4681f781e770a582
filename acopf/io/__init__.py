"""Case file input and output: MATPOWER text to plain data (a dict of lists) and back."""

from acopf.io.matpower import (
    BRANCH_COLUMNS,
    BUS_COLUMNS,
    GEN_COLUMNS,
    GENCOST_COLUMNS,
    parse_matpower,
    read_matpower,
    write_matpower,
)

__all__ = [
    "BRANCH_COLUMNS",
    "BUS_COLUMNS",
    "GENCOST_COLUMNS",
    "GEN_COLUMNS",
    "parse_matpower",
    "read_matpower",
    "write_matpower",
]
