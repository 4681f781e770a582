"""Independent evaluation of an ACOPF point: complex arithmetic in numpy from the network data, not
graphver's tape (so that a solution's feasibility is not checked by the code that produced it).

With V_i = vm_i e^(j va_i), y = 1/(r + jx) and the tap t = tap e^(j shift) (MODEL.tex):

    S_fr = (conj(y) - j bc/2) |V_i|^2 / |t|^2 - conj(y) V_i conj(V_j) / t
    S_to = (conj(y) - j bc/2) |V_j|^2 - conj(y) conj(V_i) V_j / conj(t)
    sum_gen S_g - S_d - conj(Y_s) |V_i|^2 = sum of the flows leaving bus i,   Y_s = gs + j bs
"""

from __future__ import annotations

import numpy as np


def flows(net, vm: np.ndarray, va: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Complex power leaving each branch at its from end and at its to end (per unit)."""
    v = vm * np.exp(1j * va)
    y = 1.0 / (net.r + 1j * net.x)
    t = net.tap * np.exp(1j * net.shift)
    vi, vj = v[net.f_bus], v[net.t_bus]
    charging = np.conj(y) - 1j * net.b / 2
    s_fr = charging * np.abs(vi) ** 2 / np.abs(t) ** 2 - np.conj(y) * vi * np.conj(vj) / t
    s_to = charging * np.abs(vj) ** 2 - np.conj(y) * np.conj(vi) * vj / np.conj(t)
    return s_fr, s_to


def balance_mismatch(net, vm, va, pg, qg) -> np.ndarray:
    """Complex power mismatch per bus: generation - demand - shunt - the flows leaving the bus."""
    s_fr, s_to = flows(net, vm, va)
    leaving = np.zeros(net.n_bus, dtype=complex)
    np.add.at(leaving, net.f_bus, s_fr)
    np.add.at(leaving, net.t_bus, s_to)
    generated = np.zeros(net.n_bus, dtype=complex)
    np.add.at(generated, net.gen_bus, pg + 1j * qg)
    return generated - (net.pd + 1j * net.qd) - (net.gs - 1j * net.bs) * vm**2 - leaving


def violations(net, vm, va, pg, qg) -> dict[str, float]:
    """Largest violation of each constraint family (per unit; radians for angles); 0 where satisfied."""
    vm, va, pg, qg = (np.asarray(a, dtype=np.float64) for a in (vm, va, pg, qg))
    s_fr, s_to = flows(net, vm, va)
    mismatch = balance_mismatch(net, vm, va, pg, qg)
    rated = np.isfinite(net.rate_a)
    thermal = np.maximum(np.abs(s_fr), np.abs(s_to))[rated] - net.rate_a[rated]
    difference = va[net.f_bus] - va[net.t_bus]
    out = {
        "active balance": float(np.abs(mismatch.real).max(initial=0.0)),
        "reactive balance": float(np.abs(mismatch.imag).max(initial=0.0)),
        "thermal limit": float(np.maximum(thermal, 0).max(initial=0.0)),
        "angle difference": float(np.maximum(np.maximum(net.angmin - difference, difference - net.angmax), 0).max(initial=0.0)),
        "voltage magnitude": float(np.maximum(np.maximum(net.vmin - vm, vm - net.vmax), 0).max(initial=0.0)),
        "generator active": float(np.maximum(np.maximum(net.pmin - pg, pg - net.pmax), 0).max(initial=0.0)),
        "generator reactive": float(np.maximum(np.maximum(net.qmin - qg, qg - net.qmax), 0).max(initial=0.0)),
        "reference angle": float(abs(va[net.ref])),
    }
    return out


def cost(net, pg) -> float:
    """Total generation cost in $/h (polynomials in per-unit power, highest degree first)."""
    return float(sum(np.polyval(c, p) for c, p in zip(net.cost, np.asarray(pg, dtype=np.float64))))
