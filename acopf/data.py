"""The data layer: check a parsed case, correct it, and convert it to a per-unit Network.

As in PowerModels.jl: ``check_case`` raises CaseError for data no correction can repair,
``correct_case`` replaces MATPOWER's conventions and unsupported values and logs every change
(component, old value, new value), ``to_network`` converts to per-unit numpy arrays indexed by
bus position instead of bus id. ``load`` runs the whole chain on a file.

Isolated buses. A bus of type 4 is out of service, as in MATPOWER and PowerModels: it is dropped (with
its load, logged as a warning), and in-service branches or generators at it are an error (the file
contradicts itself). A bus of another type that no in-service branch reaches is an island of its own:
with nothing attached (no load, shunt or in-service generator) it constrains nothing and is dropped
(logged); otherwise its generators must balance its own demand, which ``check_case`` decides exactly
(rational arithmetic on the file's numbers) and raises CaseError, naming the bus, when no voltage in its
limits allows it. The formulations model a feasible one-bus island as it is.
"""

import difflib
import logging
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from acopf.errors import CaseError
from acopf.io.matpower import COLUMNS, component, format_id, read_matpower, row_problem

log = logging.getLogger(__name__)

BUS = {name: index for index, name in enumerate(COLUMNS["bus"])}
GEN = {name: index for index, name in enumerate(COLUMNS["gen"])}
BRANCH = {name: index for index, name in enumerate(COLUMNS["branch"])}
GENCOST = {name: index for index, name in enumerate(COLUMNS["gencost"])}

REF_BUS_TYPE, ISOLATED_BUS_TYPE = 3, 4
BUS_TYPES = (1, 2, REF_BUS_TYPE)  # PQ, PV, reference
ANGLE_PAD = 60.0  # degrees: PowerModels' default_pad for angle limits outside (-90, 90) degrees
CASES_DIR = Path(__file__).parent / "cases"
_LABELS = {"rateA": "rate_a", "ratio": "tap"}  # MATPOWER's column names as messages show them


@dataclass
class Network:
    """A power network in per-unit on ``base_mva``, angles in radians; in-service gens and branches only.

    Buses, generators and branches are numbered by position (0-based); ``bus_ids`` maps a bus
    position to its id in the file. ``cost[g]`` holds the coefficients, highest degree first, of
    generator g's cost in $/h as a polynomial in its active power in per-unit.
    """

    name: str
    base_mva: float
    bus_ids: np.ndarray  # int
    bus_type: np.ndarray  # int: 1 PQ, 2 PV, 3 reference
    pd: np.ndarray
    qd: np.ndarray
    gs: np.ndarray  # shunt conductance: MW consumed at V = 1, in pu
    bs: np.ndarray  # shunt susceptance: MVAr injected at V = 1, in pu
    vmin: np.ndarray
    vmax: np.ndarray
    ref: int  # position of the reference bus
    gen_bus: np.ndarray  # int: bus position of each generator
    pmin: np.ndarray
    pmax: np.ndarray
    qmin: np.ndarray
    qmax: np.ndarray
    cost: list  # of np.ndarray
    f_bus: np.ndarray  # int: bus position of each branch's from end
    t_bus: np.ndarray  # int: bus position of each branch's to end
    r: np.ndarray
    x: np.ndarray
    b: np.ndarray  # total line charging susceptance
    rate_a: np.ndarray  # apparent power limit; inf when unlimited
    tap: np.ndarray  # off-nominal turns ratio, 1 for a line
    shift: np.ndarray  # phase shift, radians
    angmin: np.ndarray  # limits of va[f_bus] - va[t_bus], radians
    angmax: np.ndarray
    # the same limits in degrees, exactly as the case gives them: the formulations take their exact
    # values (degrees * pi / 180, tan of that) as constraint constants; None in a hand-built Network
    angmin_deg: np.ndarray | None = None
    angmax_deg: np.ndarray | None = None

    @property
    def n_bus(self) -> int:
        return len(self.bus_ids)

    @property
    def n_gen(self) -> int:
        return len(self.gen_bus)

    @property
    def n_branch(self) -> int:
        return len(self.f_bus)

    def gens_at(self, bus: int) -> list[int]:
        """Positions of the generators at bus position ``bus``."""
        return np.flatnonzero(self.gen_bus == bus).tolist()

    def branches_from(self, bus: int) -> list[int]:
        """Positions of the branches whose from end is bus position ``bus``."""
        return np.flatnonzero(self.f_bus == bus).tolist()

    def branches_to(self, bus: int) -> list[int]:
        """Positions of the branches whose to end is bus position ``bus``."""
        return np.flatnonzero(self.t_bus == bus).tolist()


def load(path) -> Network:
    """Read, check, correct and convert a MATPOWER case file: a path, or the name of a bundled case
    ("case5_pjm", "pglib_opf_case5_pjm"; see ``bundled_names``) when no such file exists."""
    path = resolve_case(path)
    case = read_matpower(path)
    check_case(case, str(path))
    return to_network(correct_case(case), str(path))


def resolve_case(name) -> Path:
    """``name`` as a path when that file exists, else the bundled case of that name; an error that lists
    the bundled cases (with a did-you-mean) when it is neither."""
    path = Path(name)
    if path.is_file():
        return path
    if path.exists():
        raise CaseError(f"{name}: not a case file (a folder?)")
    if path.parent != Path(".") and path.parent.exists() or path.suffix not in ("", ".m"):
        raise CaseError(f"{name}: no such file")
    try:
        return bundled_case(str(name))
    except CaseError as error:
        raise CaseError(f"{name}: no such file, and {error}") from None


def bundled_names() -> list[str]:
    """The bundled cases' short names (acopf/cases/pglib_opf_NAME.m), sorted."""
    return sorted(path.stem.removeprefix("pglib_opf_") for path in CASES_DIR.glob("*.m"))


def bundled_case(name: str) -> Path:
    """Path of a case in acopf/cases: "case5_pjm", "pglib_opf_case5_pjm" or the file name."""
    stem = Path(name).stem
    paths = {path.stem: path for path in sorted(CASES_DIR.glob("*.m"))}
    for candidate in (stem, f"pglib_opf_{stem}"):
        if candidate in paths:
            return paths[candidate]
    close = difflib.get_close_matches(f"pglib_opf_{stem}", paths, n=1)
    hint = f"; did you mean {close[0].removeprefix('pglib_opf_')}?" if close else ""
    raise CaseError(f"no bundled case {name!r}{hint} (bundled: "
                    f"{', '.join(stem.removeprefix('pglib_opf_') for stem in paths)})")


# ---- check: raise for data no correction can repair ----

def check_case(case: dict, source: str = "<case>") -> None:
    """Raise CaseError naming the component for invalid data; return None for a valid case."""
    _check_tables(case, source)
    bus_ids = _check_buses(case["bus"], source)
    _check_gens(case["gen"], bus_ids, source)
    _check_branches(case["branch"], bus_ids, source)
    if len(case["gencost"]) != len(case["gen"]):
        raise CaseError(f"{source}: gencost has {len(case['gencost'])} rows but gen has {len(case['gen'])}; "
                        "each generator needs one cost row (reactive power costs are not supported)")
    _check_isolated(case, source)


def _check_tables(case: dict, source: str) -> None:
    """Every table present, every row wide enough, no NaN in the columns acopf reads."""
    for key in ("baseMVA", *COLUMNS):
        if key not in case:
            raise CaseError(f"{source}: missing table mpc.{key}")
    if not (math.isfinite(case["baseMVA"]) and case["baseMVA"] > 0):
        raise CaseError(f"{source}: baseMVA must be a positive number, not {case['baseMVA']!r}")
    for table, columns in COLUMNS.items():
        for index, row in enumerate(case[table]):
            problem = row_problem(table, row) or _nan_problem(columns, row)
            if problem:
                raise CaseError(f"{source}: {component(table, index, row)}: {problem}")


def _nan_problem(columns: tuple, row: list) -> str | None:
    """The first column acopf reads that holds NaN, or None."""
    nan = next((name for name, value in zip(columns, row) if math.isnan(value)), None)
    return f"{nan} is NaN" if nan else None


def _check_buses(rows: list, source: str) -> set[float]:
    """Unique whole-number ids, a supported type, Vmin <= Vmax, one reference bus at least."""
    first_row = {}
    for index, row in enumerate(rows):
        name = f"{source}: {component('bus', index, row)}"
        bus_id, bus_type = row[BUS["bus_i"]], row[BUS["type"]]
        if not float(bus_id).is_integer():
            raise CaseError(f"{name}: the bus id must be a whole number")
        if bus_id in first_row:
            raise CaseError(f"{name}: duplicate bus id (rows {first_row[bus_id] + 1} and {index + 1})")
        first_row[bus_id] = index
        if bus_type not in (*BUS_TYPES, ISOLATED_BUS_TYPE):
            raise CaseError(f"{name}: unknown bus type {format_id(bus_type)} (1 PQ, 2 PV, 3 reference, 4 isolated)")
        if row[BUS["Vmin"]] > row[BUS["Vmax"]]:
            raise CaseError(f"{name}: Vmin {row[BUS['Vmin']]} > Vmax {row[BUS['Vmax']]}")
    if not any(row[BUS["type"]] == REF_BUS_TYPE for row in rows):
        raise CaseError(f"{source}: no reference bus (type 3)")
    return set(first_row)


def _check_gens(rows: list, bus_ids: set[float], source: str) -> None:
    """A known bus, Pmin <= Pmax and Qmin <= Qmax."""
    for index, row in enumerate(rows):
        name = f"{source}: {component('gen', index, row)}"
        _check_bus_known(name, row[GEN["bus"]], bus_ids)
        for low, high in (("Pmin", "Pmax"), ("Qmin", "Qmax")):
            if row[GEN[low]] > row[GEN[high]]:
                raise CaseError(f"{name}: {low} {row[GEN[low]]} > {high} {row[GEN[high]]}")


def _check_branches(rows: list, bus_ids: set[float], source: str) -> None:
    """Known buses, two different ends when in service, rate_a >= 0, a non-zero impedance, angmin <= angmax."""
    for index, row in enumerate(rows):
        name = f"{source}: {component('branch', index, row)}"
        _check_bus_known(name, row[BRANCH["fbus"]], bus_ids)
        _check_bus_known(name, row[BRANCH["tbus"]], bus_ids)
        if row[BRANCH["fbus"]] == row[BRANCH["tbus"]] and row[BRANCH["status"]] > 0:
            raise CaseError(f"{name}: both ends at bus {format_id(row[BRANCH['fbus']])} (a branch connects two buses)")
        if row[BRANCH["rateA"]] < 0:
            raise CaseError(f"{name}: negative rate_a {row[BRANCH['rateA']]}")
        if row[BRANCH["r"]] == 0 and row[BRANCH["x"]] == 0:
            raise CaseError(f"{name}: zero impedance (r = x = 0)")
        if row[BRANCH["angmin"]] > row[BRANCH["angmax"]]:
            raise CaseError(f"{name}: angmin {row[BRANCH['angmin']]} > angmax {row[BRANCH['angmax']]}")


def _check_bus_known(name: str, bus_id: float, bus_ids: set[float]) -> None:
    if bus_id not in bus_ids:
        raise CaseError(f"{name}: bus {format_id(bus_id)} does not exist")


def _attached(case: dict) -> tuple[dict, dict]:
    """Per bus id, the row numbers of the in-service branches and of the in-service generators at it."""
    branches: dict[float, list[int]] = {row[BUS["bus_i"]]: [] for row in case["bus"]}
    gens: dict[float, list[int]] = {row[BUS["bus_i"]]: [] for row in case["bus"]}
    for index, row in enumerate(case["branch"]):
        if row[BRANCH["status"]] > 0:
            for end in {row[BRANCH["fbus"]], row[BRANCH["tbus"]]}:
                branches[end].append(index)
    for index, row in enumerate(case["gen"]):
        if row[GEN["status"]] > 0:
            gens[row[GEN["bus"]]].append(index)
    return branches, gens


def _has_demand(row: list) -> bool:
    """Load or a shunt at the bus."""
    return any(row[BUS[column]] != 0 for column in ("Pd", "Qd", "Gs", "Bs"))


def _dropped(row: list, branches: dict, gens: dict) -> bool:
    """Whether correct_case drops the bus: type 4 (out of service), or nothing attached at all."""
    bus_id = row[BUS["bus_i"]]
    if row[BUS["type"]] == ISOLATED_BUS_TYPE:
        return True
    return not branches[bus_id] and not gens[bus_id] and not _has_demand(row)


def _check_isolated(case: dict, source: str) -> None:
    """Buses that no in-service branch reaches (module docstring): a type-4 bus with in-service branches or
    generators, and a lone bus whose generators cannot balance its demand, raise; so does a case whose
    every reference bus would be dropped."""
    branches, gens = _attached(case)
    for index, row in enumerate(case["bus"]):
        name = f"{source}: {component('bus', index, row)}"
        bus_id = row[BUS["bus_i"]]
        if row[BUS["type"]] == ISOLATED_BUS_TYPE:
            attached = ([component("branch", k, case["branch"][k]) for k in branches[bus_id]]
                        + [component("gen", k, case["gen"][k]) for k in gens[bus_id]])
            if attached:
                raise CaseError(f"{name}: isolated buses (type 4) are not supported with in-service components "
                                f"attached ({', '.join(attached)}); MATPOWER and PowerModels would switch them off "
                                "silently: set their status to 0, or give the bus type 1")
        elif not branches[bus_id] and (gens[bus_id] or _has_demand(row)):
            problem = _island_problem(row, [case["gen"][k] for k in gens[bus_id]],
                                      ", ".join(component("gen", k, []) for k in gens[bus_id]))
            if problem:
                raise CaseError(f"{name}: no in-service branch connects it, and alone it cannot balance its power: "
                                f"{problem}; the case is infeasible (connect the bus, or remove its load)")
    refs = [row for row in case["bus"] if row[BUS["type"]] == REF_BUS_TYPE]
    if refs and all(_dropped(row, branches, gens) for row in refs):
        ids = ", ".join(format_id(row[BUS["bus_i"]]) for row in refs)
        raise CaseError(f"{source}: reference bus {ids}: no in-service branch, load, shunt or generator is attached, "
                        "so the network has no reference bus; make a bus of the network the reference (type 3)")


def _island_problem(row: list, gen_rows: list, gen_names: str) -> str | None:
    """Why a bus alone cannot balance its power, or None if it can: some vm in [Vmin, Vmax] and generation
    within the generators' limits with Pg = Pd + Gs vm^2 and Qg = Qd - Bs vm^2. Decided exactly (Fractions
    of the file's floats); None (no verdict) for infinite or NaN demand data."""
    demand = [row[BUS[column]] for column in ("Pd", "Qd", "Gs", "Bs", "Vmin")]
    limits = [_exact_sum(g[GEN[column]] for g in gen_rows) for column in ("Pmin", "Pmax", "Qmin", "Qmax")]
    if not all(math.isfinite(value) for value in demand) or any(value is None for value in limits):
        return None
    pd, qd, gs, bs, vmin = (Fraction(value) for value in demand)
    pmin, pmax, qmin, qmax = limits
    vmax = _exact(row[BUS["Vmax"]])
    squared = (max(vmin, Fraction(0)) ** 2, vmax**2)  # the range of vm^2
    active, reactive = _solutions(pd, gs, pmin, pmax), _solutions(qd, -bs, qmin, qmax)
    low = max(squared[0], active[0], reactive[0])
    high = min(squared[1], active[1], reactive[1])
    if low <= high:
        return None
    text = f"Pd {row[BUS['Pd']]} MW, Qd {row[BUS['Qd']]} MVAr"
    if gs != 0 or bs != 0:
        text += f", shunt Gs {row[BUS['Gs']]} MW, Bs {row[BUS['Bs']]} MVAr at 1 pu"
    if gen_rows:
        shown = [float(value) for value in limits]
        text += f" against {gen_names} with Pg in [{shown[0]}, {shown[1]}] MW, Qg in [{shown[2]}, {shown[3]}] MVAr"
    else:
        text += " and no in-service generator"
    return text + f", for every vm in [{row[BUS['Vmin']]}, {row[BUS['Vmax']]}] pu"


def _exact(value: float):
    """A finite float as the Fraction it is; an infinity as itself."""
    return Fraction(value) if math.isfinite(value) else value


def _exact_sum(values):
    """The exact sum of floats (a Fraction, or an infinity); None where +inf and -inf meet."""
    values = list(values)
    infinite = {value for value in values if math.isinf(value)}
    if len(infinite) > 1:
        return None
    return infinite.pop() if infinite else sum((Fraction(value) for value in values), Fraction(0))


def _solutions(offset: Fraction, slope: Fraction, low, high) -> tuple:
    """The interval of w with low <= offset + slope w <= high (ends may be infinite; empty: low > high)."""
    if slope == 0:
        return (-math.inf, math.inf) if low <= offset <= high else (math.inf, -math.inf)
    ends = ((low - offset) / slope, (high - offset) / slope)
    return min(ends), max(ends)


# ---- correct: replace conventions and unsupported values, logging each change ----

def correct_case(case: dict) -> dict:
    """A corrected copy of a checked case; each change is logged with the component, old and new value.

    rate_a 0 (unlimited) becomes inf, tap 0 (a line) becomes 1; angle limits at or beyond
    +-90 degrees, or both 0 (unlimited), become +-60 degrees, as PowerModels'
    correct_voltage_angle_differences! does (and so PGLib's reference solutions). Buses of type 4
    (out of service) and buses with nothing attached (no in-service branch or generator, no load or
    shunt) are dropped.
    """
    corrected = {**case, **{table: [list(row) for row in case[table]] for table in COLUMNS}}
    corrected["bus"] = _drop_isolated_buses(corrected)
    for index, row in enumerate(corrected["branch"]):
        name = component("branch", index, row)
        if row[BRANCH["rateA"]] == 0:
            _set(row, "rateA", math.inf, name, "0 means unlimited", logging.INFO)
        if row[BRANCH["ratio"]] == 0:
            _set(row, "ratio", 1.0, name, "0 means a line, not a transformer", logging.INFO)
        _correct_angle_limits(row, name)
    return corrected


def _drop_isolated_buses(case: dict) -> list:
    """The bus rows correct_case keeps; each one dropped is logged (a warning where load goes with it)."""
    branches, gens = _attached(case)
    kept = []
    for index, row in enumerate(case["bus"]):
        if not _dropped(row, branches, gens):
            kept.append(row)
            continue
        name = component("bus", index, row)
        if row[BUS["type"]] != ISOLATED_BUS_TYPE:
            log.info("%s: dropped: no in-service branch or generator, no load or shunt (it constrains nothing)", name)
        elif _has_demand(row):
            log.warning("%s: isolated (type 4): dropped with its load and shunt (Pd %s MW, Qd %s MVAr, Gs %s MW, "
                        "Bs %s MVAr), which are not served, as in MATPOWER and PowerModels", name,
                        *(row[BUS[column]] for column in ("Pd", "Qd", "Gs", "Bs")))
        else:
            log.info("%s: isolated (type 4): dropped", name)
    return kept


def _set(row: list, column: str, new: float, name: str, why: str, level: int) -> None:
    """Set a branch row's column to ``new`` and log the component, the old and the new value."""
    log.log(level, "%s: %s %s -> %s (%s)", name, _LABELS.get(column, column), row[BRANCH[column]], new, why)
    row[BRANCH[column]] = new


def _correct_angle_limits(row: list, name: str) -> None:
    """PowerModels' rule: angmin <= -90 -> -60, angmax >= 90 -> 60, both 0 -> +-60 (degrees)."""
    angmin, angmax = row[BRANCH["angmin"]], row[BRANCH["angmax"]]
    both_zero = angmin == 0 and angmax == 0
    why = "degrees; both 0 mean unlimited" if both_zero else "degrees; limits beyond 90 are not supported"
    if both_zero or angmin <= -90:
        _set(row, "angmin", -ANGLE_PAD, name, why, logging.WARNING)
    if both_zero or angmax >= 90:
        _set(row, "angmax", ANGLE_PAD, name, why, logging.WARNING)


# ---- convert: per-unit arrays, bus positions instead of ids ----

def to_network(case: dict, source: str = "<case>") -> Network:
    """The per-unit Network of a checked and corrected case, keeping in-service gens and branches."""
    base = float(case["baseMVA"])
    bus = _matrix(case["bus"], "bus")
    bus_ids = bus[:, BUS["bus_i"]].astype(int)
    position = {bus_id: index for index, bus_id in enumerate(bus_ids.tolist())}
    gen_rows = _in_service(case["gen"], GEN["status"], "generators", source)
    branch_rows = _in_service(case["branch"], BRANCH["status"], "branches", source)
    gen = _matrix([case["gen"][k] for k in gen_rows], "gen")
    branch = _matrix([case["branch"][k] for k in branch_rows], "branch")
    if np.any(branch[:, BRANCH["ratio"]] == 0) or np.any(branch[:, BRANCH["rateA"]] == 0):
        raise CaseError(f"{source}: tap or rate_a 0 (MATPOWER conventions) left: run correct_case first")
    return Network(
        name=case.get("name", "case"), base_mva=base,
        bus_ids=bus_ids, bus_type=bus[:, BUS["type"]].astype(int),
        pd=bus[:, BUS["Pd"]] / base, qd=bus[:, BUS["Qd"]] / base,
        gs=bus[:, BUS["Gs"]] / base, bs=bus[:, BUS["Bs"]] / base,
        vmin=bus[:, BUS["Vmin"]], vmax=bus[:, BUS["Vmax"]],
        ref=_reference_bus(bus, source),
        gen_bus=_positions(gen[:, GEN["bus"]], position),
        pmin=_per_unit(gen[:, GEN["Pmin"]], base, -math.inf), pmax=_per_unit(gen[:, GEN["Pmax"]], base, math.inf),
        qmin=_per_unit(gen[:, GEN["Qmin"]], base, -math.inf), qmax=_per_unit(gen[:, GEN["Qmax"]], base, math.inf),
        cost=[_cost_per_unit(case["gencost"][k], base) for k in gen_rows],
        f_bus=_positions(branch[:, BRANCH["fbus"]], position),
        t_bus=_positions(branch[:, BRANCH["tbus"]], position),
        r=branch[:, BRANCH["r"]], x=branch[:, BRANCH["x"]], b=branch[:, BRANCH["b"]],
        rate_a=_per_unit(branch[:, BRANCH["rateA"]], base, math.inf), tap=branch[:, BRANCH["ratio"]],
        shift=np.radians(branch[:, BRANCH["angle"]]),
        angmin=np.radians(branch[:, BRANCH["angmin"]]), angmax=np.radians(branch[:, BRANCH["angmax"]]),
        angmin_deg=branch[:, BRANCH["angmin"]].copy(), angmax_deg=branch[:, BRANCH["angmax"]].copy(),
    )


def _per_unit(values: np.ndarray, base: float, direction: float) -> np.ndarray:
    """values / base for limits: where the quotient is inexact it is rounded toward ``direction`` (down for
    lower limits, up for upper ones), so that a per-unit limit never lies inside the case's limit."""
    quotients = values / base
    for k, (value, quotient) in enumerate(zip(values.tolist(), quotients.tolist())):
        if math.isfinite(quotient):
            exact = Fraction(value) / Fraction(base)
            if (direction > 0 and quotient < exact) or (direction < 0 and quotient > exact):
                quotients[k] = math.nextafter(quotient, direction)
    return quotients


def _matrix(rows: list, table: str) -> np.ndarray:
    """The columns acopf reads of a table's rows, as a float64 array (rows may be wider)."""
    width = len(COLUMNS[table])
    return np.array([row[:width] for row in rows], dtype=np.float64).reshape(len(rows), width)


def _in_service(rows: list, status_column: int, what: str, source: str) -> list[int]:
    """Row numbers of the in-service components (status > 0); logs how many were dropped."""
    kept = [index for index, row in enumerate(rows) if row[status_column] > 0]
    if len(kept) < len(rows):
        log.info("%s: dropped %d out-of-service %s", source, len(rows) - len(kept), what)
    return kept


def _positions(bus_ids: np.ndarray, position: dict) -> np.ndarray:
    return np.array([position[int(bus_id)] for bus_id in bus_ids], dtype=int)


def _reference_bus(bus: np.ndarray, source: str) -> int:
    """Position of the reference bus; the first one when the file has several."""
    refs = np.flatnonzero(bus[:, BUS["type"]] == REF_BUS_TYPE)
    if len(refs) > 1:
        ids = ", ".join(format_id(bus[k, BUS["bus_i"]]) for k in refs)
        log.warning("%s: %d reference buses (%s); using bus %s", source, len(refs), ids,
                    format_id(bus[refs[0], BUS["bus_i"]]))
    return int(refs[0])


def _cost_per_unit(row: list, base: float) -> np.ndarray:
    """Polynomial cost coefficients for power in pu: MATPOWER's c_k (for MW) times base**k."""
    first, n = len(GENCOST), int(row[GENCOST["n"]])
    coefficients = np.array(row[first:first + n], dtype=np.float64)  # highest degree first
    return coefficients * base ** np.arange(n - 1, -1, -1, dtype=np.float64)


# ---- the angle-difference limits, exactly, and what the formulations need of them ----

RIGHT_ANGLE = 90  # degrees


def branch_degrees(net) -> list[tuple[Fraction, Fraction]]:
    """Each branch's limits of va_i - va_j in degrees, exactly as the case gives them (Fractions of the
    floats read). A Network built without ``angmin_deg`` / ``angmax_deg`` gets them from its radians,
    stepped outward by 3 ulps (math.degrees rounds twice, by less than 2 ulps together)."""
    if net.angmin_deg is not None and net.angmax_deg is not None:
        return [(Fraction(float(low)), Fraction(float(high))) for low, high in zip(net.angmin_deg, net.angmax_deg)]
    return [(_outward_degrees(float(low), -math.inf), _outward_degrees(float(high), math.inf))
            for low, high in zip(net.angmin, net.angmax)]


def _outward_degrees(radians: float, direction: float) -> Fraction:
    degrees = math.degrees(radians)
    if degrees != 0.0:
        for _ in range(3):
            degrees = math.nextafter(degrees, direction)
    return Fraction(degrees)


def pair_limits(net) -> dict[tuple[int, int], tuple[Fraction, Fraction]]:
    """Each connected bus pair (i, j), oriented as its first branch, with the intersection of the
    angle-difference limits of va_i - va_j over its branches (degrees, exact)."""
    limits: dict[tuple[int, int], tuple[Fraction, Fraction]] = {}
    for k, (low, high) in enumerate(branch_degrees(net)):
        i, j = int(net.f_bus[k]), int(net.t_bus[k])
        if (j, i) in limits:
            i, j, low, high = j, i, -high, -low
        old = limits.get((i, j))
        limits[(i, j)] = (low, high) if old is None else (max(old[0], low), min(old[1], high))
    return limits


def check_angle_limits(net) -> None:
    """The rectangular forms of the angle-difference limits (tan of them) need them within (-90, 90) degrees."""
    for k, (low, high) in enumerate(branch_degrees(net)):
        if not (-RIGHT_ANGLE < low <= high < RIGHT_ANGLE):
            raise CaseError(f"branch {k + 1}: angle-difference limits must lie within (-90, 90) degrees for the "
                            "rectangular and lifted formulations")


def check_parallel_limits(net) -> None:
    """Parallel branches share one angle difference: their limits must intersect (else nothing is feasible)."""
    for (i, j), (low, high) in pair_limits(net).items():
        if low > high:
            raise CaseError(f"buses {net.bus_ids[i]} and {net.bus_ids[j]}: the angle-difference limits of their "
                            "parallel branches do not intersect")
