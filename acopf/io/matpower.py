"""Reading and writing MATPOWER case files (case format version 2).

A case file is MATLAB code, but only a small subset of it: a ``function mpc = name`` header and
assignments ``mpc.field = value;`` where a value is a number, a quoted string, a numeric matrix
``[ ... ]`` or a cell array ``{ ... }``. This module tokenizes that subset and parses it by
recursive descent; it never evaluates the text. Tables come back as lists of rows of floats in
MATPOWER's units (MW, MVAr, degrees); ``acopf.data`` checks them and converts them to per-unit.
Reference: MATPOWER's ``caseformat`` help text.
"""

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

from acopf.errors import CaseError

log = logging.getLogger(__name__)

BUS_COLUMNS = ("bus_i", "type", "Pd", "Qd", "Gs", "Bs", "area", "Vm", "Va", "baseKV", "zone", "Vmax", "Vmin")
GEN_COLUMNS = ("bus", "Pg", "Qg", "Qmax", "Qmin", "Vg", "mBase", "status", "Pmax", "Pmin")
BRANCH_COLUMNS = ("fbus", "tbus", "r", "x", "b", "rateA", "rateB", "rateC", "ratio", "angle", "status",
                  "angmin", "angmax")
GENCOST_COLUMNS = ("model", "startup", "shutdown", "n")  # then the n coefficients, highest degree first

# The columns acopf reads; a table's rows need at least these (files may have more, e.g. OPF results).
COLUMNS = {"bus": BUS_COLUMNS, "gen": GEN_COLUMNS, "branch": BRANCH_COLUMNS, "gencost": GENCOST_COLUMNS}
REQUIRED_TABLES = ("bus", "gen", "branch")
KNOWN_FIELDS = ("version", "baseMVA", "bus", "gen", "branch", "gencost")
# MATPOWER's own optional fields that an ACOPF does not use: skipped with an info message (PGLib cases all
# have mpc.areas; a warning on every load was the first line of every `acopf bound`); other fields warn
UNUSED_STANDARD_FIELDS = ("areas", "bus_name", "gentype", "genfuel", "branch_name", "gen_name")

_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\f\v]+)
  | (?P<continuation>\.\.\.[^\n]*(?:\n|$))      # '...' continues the line; the rest is a comment
  | (?P<comment>%[^\n]*)
  | (?P<newline>\n)
  | (?P<number>[+-]?(?:\d+(?:\.(?!\.\.)\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:Inf|inf|NaN|nan)\b)
  | (?P<name>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)
  | (?P<string>'(?:[^'\n]|'')*'|"(?:[^"\n]|"")*")
  | (?P<punct>[=\[\]{};,])
""", re.VERBOSE)

_KEPT = ("number", "name", "string", "punct", "newline")


@dataclass(frozen=True)
class Token:
    """One token: kind is number, name, string, punct, newline or end; line counts from 1."""

    kind: str
    text: str
    line: int


@dataclass(frozen=True)
class Matrix:
    """A numeric matrix as written: its rows and the line where each row starts."""

    rows: list
    lines: list


def tokenize(text: str, source: str = "<string>") -> list[Token]:
    """Split MATPOWER text into tokens, dropping spaces, comments and continuations."""
    tokens = []
    line, position = 1, 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise CaseError(f"{source}, line {line}: unexpected character {text[position]!r}")
        if match.lastgroup in _KEPT:
            tokens.append(Token(match.lastgroup, match.group(), line))
        line += match.group().count("\n")
        position = match.end()
    tokens.append(Token("end", "", line))
    return tokens


class _Parser:
    """Recursive descent over the tokens of a case file: a header and assignments."""

    def __init__(self, tokens: list[Token], source: str):
        self.tokens = tokens
        self.position = 0
        self.source = source

    def peek(self) -> Token:
        return self.tokens[self.position]

    def take(self) -> Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def error(self, token: Token, message: str) -> CaseError:
        return CaseError(f"{self.source}, line {token.line}: {message}")

    def expect(self, text: str, context: str) -> Token:
        token = self.take()
        if token.text != text:
            raise self.error(token, f"expected {text!r} {context}, found {_shown(token)}")
        return token

    def parse(self) -> tuple[tuple[str, str] | None, dict]:
        """The header's (output, name), None without a header, and {target: (value, line)}."""
        header, assignments = None, {}
        while self.peek().kind != "end":
            token = self.take()
            if token.kind == "newline" or token.text in (";", ","):
                continue
            if token.text == "function" and header is None and not assignments:
                header = self.header()
            elif token.kind == "name":
                assignments[token.text] = (self.assignment(token), token.line)
            else:
                raise self.error(token, f"unexpected {_shown(token)}")
        return header, assignments

    def header(self) -> tuple[str, str]:
        """``function mpc = name``: the output variable and the name of the case."""
        output = self.take_name("after 'function'")
        self.expect("=", "in the function header")
        return output.text, self.take_name("as the case name in the function header").text

    def take_name(self, context: str) -> Token:
        token = self.take()
        if token.kind != "name":
            raise self.error(token, f"expected a name {context}, found {_shown(token)}")
        return token

    def assignment(self, target: Token):
        """``target = value`` followed by a separator; returns the value."""
        self.expect("=", f"after {target.text}")
        value = self.value(target)
        end = self.peek()
        if end.kind not in ("newline", "end") and end.text not in (";", ","):
            raise self.error(end, f"unexpected {_shown(end)} after the value of {target.text}")
        return value

    def value(self, target: Token):
        """A number (float), a string (str), a matrix (Matrix) or a cell array (None: never used)."""
        token = self.take()
        if token.kind == "number":
            return float(token.text)
        if token.kind == "string":
            quote = token.text[0]
            return token.text[1:-1].replace(quote * 2, quote)
        if token.text == "[":
            return self.matrix(target, token)
        if token.text == "{":
            return self.cell(target, token)
        raise self.error(token, f"unexpected {_shown(token)} as the value of {target.text}")

    def matrix(self, target: Token, opening: Token) -> Matrix:
        """Numbers up to ']'; ';' and newlines end rows, commas or spaces separate numbers."""
        rows, lines, row = [], [], []
        while True:
            token = self.take()
            if token.kind == "number":
                if not row:
                    lines.append(token.line)
                row.append(float(token.text))
            elif token.kind == "newline" or token.text in (";", "]"):
                if row:
                    rows.append(row)
                    row = []
                if token.text == "]":
                    return Matrix(rows, lines)
            elif token.text != ",":
                self.check_closed(token, target, opening, "]")
                raise self.error(token, f"unexpected {_shown(token)} in the matrix {target.text}")

    def cell(self, target: Token, opening: Token) -> None:
        """Skip a cell array (bus names and the like) up to its matching '}'."""
        depth = 1
        while depth:
            token = self.take()
            self.check_closed(token, target, opening, "}")
            depth += {"{": 1, "}": -1}.get(token.text, 0)

    def check_closed(self, token: Token, target: Token, opening: Token, closing: str) -> None:
        """Raise if ``token`` shows that the bracket opened at ``opening`` was never closed."""
        next_assignment = token.kind == "name" and self.peek().text == "="
        if token.kind == "end" or next_assignment:
            raise self.error(opening, f"{target.text} opened with {opening.text!r} is not closed by {closing!r}")


def _shown(token: Token) -> str:
    """A token as an error message shows it."""
    return {"newline": "end of line", "end": "end of file"}.get(token.kind, repr(token.text))


def format_id(value: float) -> str:
    """A bus id or count as messages show it: 7, not 7.0."""
    return str(int(value)) if math.isfinite(value) and float(value).is_integer() else repr(value)


def component(table: str, index: int, row: list) -> str:
    """A component's name in messages: "bus 7" (its id), "gen 2" (row number), "branch 3 (1-4)"."""
    if table == "bus" and row:
        return f"bus {format_id(row[0])}"
    if table == "branch" and len(row) >= 2:
        return f"branch {index + 1} ({format_id(row[0])}-{format_id(row[1])})"
    if table == "gencost":
        return f"gen {index + 1} (gencost row {index + 1})"
    return f"{table} {index + 1}"


def row_problem(table: str, row: list) -> str | None:
    """What is wrong with the shape of one row of a table, or None."""
    if table == "gencost":
        return _cost_row_problem(row)
    needed = len(COLUMNS[table])
    return f"{len(row)} columns, at least {needed} needed" if len(row) < needed else None


def _cost_row_problem(row: list) -> str | None:
    """Only polynomial costs (model 2) with their n coefficients present are supported."""
    if len(row) < 4:
        return f"{len(row)} columns, at least 4 needed (model, startup, shutdown, n)"
    model, n = row[0], row[3]
    if model == 1:
        return "piecewise-linear cost (model 1) is not supported"
    if model != 2:
        return f"unknown cost model {format_id(model)} (2 is polynomial)"
    if not (math.isfinite(n) and n >= 1 and n.is_integer()):
        return f"the number of cost coefficients n must be a whole number >= 1, not {format_id(n)}"
    if len(row) < 4 + n:
        return f"a polynomial of {int(n)} coefficients needs {4 + int(n)} columns, found {len(row)}"
    return None


def parse_matpower(text: str, source: str = "<string>") -> dict:
    """Parse MATPOWER (version 2) text into a case dict.

    Returns {"name", "version", "baseMVA", "bus", "gen", "branch", "gencost"}; tables are lists of
    rows of floats ("gencost" is [] when the file has none). Fields acopf does not use are skipped
    with a warning; dcline data, other format versions and malformed rows raise CaseError.
    """
    header, assignments = _Parser(tokenize(text, source), source).parse()
    struct, name = header or ("mpc", _default_name(source))
    fields = {}
    for target, (value, line) in assignments.items():
        field = target[len(struct) + 1:] if target.startswith(struct + ".") else target
        if field == "dcline":
            raise CaseError(f"{source}, line {line}: dcline data is not supported ({target})")
        if field in KNOWN_FIELDS:
            fields[field] = (value, line)
        else:
            report = log.info if field in UNUSED_STANDARD_FIELDS else log.warning
            report("%s, line %d: skipping %s (not used by acopf)", source, line, target)
    case = {"name": name, "version": _version(fields, source),
            "baseMVA": _base_mva(fields, source)}
    for table in (*REQUIRED_TABLES, "gencost"):
        case[table] = _table(fields, table, source)
    return case


def _default_name(source: str) -> str:
    """A case name for text without a header: the file's stem when it is a valid name."""
    stem = Path(source).stem
    return stem if stem.isidentifier() else "case"


def _version(fields: dict, source: str) -> str:
    """Only case format version 2 is supported; a file without a version is version 1."""
    if "version" not in fields:
        raise CaseError(f"{source}: mpc.version is missing (a version 1 case); "
                        "only MATPOWER case format version 2 is supported")
    value, line = fields["version"]
    version = format_id(value) if isinstance(value, float) else value
    if version != "2":
        raise CaseError(f"{source}, line {line}: case format version {version!r} is not supported; "
                        "only version 2 is")
    return "2"


def _base_mva(fields: dict, source: str) -> float:
    """The system base power in MVA: a positive finite number."""
    if "baseMVA" not in fields:
        raise CaseError(f"{source}: missing mpc.baseMVA")
    value, line = fields["baseMVA"]
    if not (isinstance(value, float) and math.isfinite(value) and value > 0):
        raise CaseError(f"{source}, line {line}: mpc.baseMVA must be a positive number, not {value!r}")
    return value


def _table(fields: dict, table: str, source: str) -> list[list[float]]:
    """The rows of one table, each checked for its shape (column count, cost model)."""
    if table not in fields:
        if table == "gencost":
            return []
        raise CaseError(f"{source}: missing table mpc.{table}")
    matrix, line = fields[table]
    if not isinstance(matrix, Matrix):
        raise CaseError(f"{source}, line {line}: mpc.{table} must be a matrix [ ... ]")
    for index, (row, row_line) in enumerate(zip(matrix.rows, matrix.lines)):
        problem = row_problem(table, row)
        if problem:
            raise CaseError(f"{source}, line {row_line}: {component(table, index, row)}: {problem}")
    return matrix.rows


def read_matpower(path) -> dict:
    """Parse a MATPOWER case file; error messages name the file (an empty file says so)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise CaseError(f"{path}: cannot read the case file: {error.strerror}") from None
    if not text.strip():
        raise CaseError(f"{path}: the file is empty (expected a MATPOWER case: function mpc = NAME, mpc.version = '2', "
                        "mpc.baseMVA, mpc.bus, mpc.gen, mpc.branch, mpc.gencost)")
    return parse_matpower(text, source=str(path))


def write_matpower(case: dict) -> str:
    """MATPOWER text of a case dict as parse_matpower returns it; parsing the text gives the case back."""
    if not case["name"].isidentifier():
        raise ValueError(f"case name {case['name']!r} is not a valid MATLAB function name")
    lines = [f"function mpc = {case['name']}", "mpc.version = '2';",
             f"mpc.baseMVA = {_format_number(case['baseMVA'])};"]
    headers = {**COLUMNS, "gencost": ("2", "startup", "shutdown", "n", "c(n-1)", "...", "c0")}
    for table in (*REQUIRED_TABLES, "gencost"):
        lines += ["", "%\t" + "\t".join(headers[table]), f"mpc.{table} = ["]
        lines += ["\t" + "\t".join(_format_number(value) for value in row) + ";" for row in case[table]]
        lines.append("];")
    return "\n".join(lines) + "\n"


def _format_number(value: float) -> str:
    """The shortest text that reads back as exactly this float; Inf and NaN as MATLAB writes them."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    return repr(value)
