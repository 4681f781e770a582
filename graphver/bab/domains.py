"""The batched store of open domains: input boxes, node splits, bounds and each domain's next split."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor


@dataclass
class Domains:
    """A batch of domains, one row each. ``split_lo``/``split_hi`` constrain the branchable nodes
    (``Candidates.nodes``); ``lower_bound`` is the certified bound of the aggregated row; the ``*_choice``
    fields hold the split to make when the domain is selected (computed when it was bounded). A child is a
    subset of its parent, so the parent's intervals of the refined nodes (``prior_*``) hold on it: its pass
    intersects them with its own, and its intermediate bounds never get looser than the parent's (the
    root's alpha-optimised ones reach every domain)."""

    lower: Tensor  # [D, n]
    upper: Tensor
    split_lo: Tensor  # [D, K]
    split_hi: Tensor
    lower_bound: Tensor  # [D]
    proven: Tensor  # [D] bool: the goal is met on the whole domain (verify: the property holds; or it is empty)
    depth: Tensor  # [D] long
    row: Tensor  # [D] long, the binding row
    input_choice: Tensor  # [D] long
    input_point: Tensor  # [D]
    node_choice: Tensor  # [D] long, -1 when no node split helps
    node_point: Tensor  # [D]
    alphas: Tensor  # [D, A] optimised relaxation parameters inherited by the children (A = 0 without alpha)
    prior_lo: Tensor  # [D, R] intervals of the refined nodes (graphver.bounds.ibp.refined_nodes) on the domain,
    prior_hi: Tensor  # inherited by the children (R = 0: not kept)
    # the domain's cuts (``LpStage``): linear bounds of constraint rows tight at its last LP, valid on the
    # domain and so on its children, which start their LPs with them (C = 0: none; padding rows: offset NaN)
    cut_coef: Tensor  # [D, C, n]
    cut_offset: Tensor  # [D, C]
    cut_row: Tensor  # [D, C] long: the constraint row (0 .. outputs - rows - 1) each cut bounds

    def __len__(self) -> int:
        return int(self.lower_bound.shape[0])

    def to(self, device) -> "Domains":
        return Domains(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def select(self, index: Tensor) -> "Domains":
        return Domains(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def cat(parts: list["Domains"]) -> "Domains":
        parts = [p for p in parts if p is not None and len(p)] or [p for p in parts if p is not None][:1]
        return Domains(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(parts[0])})


class DomainStore:
    """Open domains. ``pop`` takes the ``count`` domains with the smallest bound (best-first), or the
    deepest ones while more than ``max_domains`` are open (depth-first keeps memory bounded)."""

    def __init__(self, max_domains: int):
        self.max_domains = max_domains
        self.domains: Domains | None = None

    def __len__(self) -> int:
        return 0 if self.domains is None else len(self.domains)

    def push(self, domains: Domains) -> None:
        if len(domains) == 0:
            return
        self.domains = domains if self.domains is None else Domains.cat([self.domains, domains])

    def pop(self, count: int) -> Domains:
        total = len(self)
        count = min(count, total)
        if total > self.max_domains:
            key = -self.domains.depth.to(self.domains.lower_bound.dtype)
        else:
            key = self.domains.lower_bound
        index = torch.topk(key, count, largest=False, sorted=True).indices
        keep = torch.ones(total, dtype=torch.bool, device=key.device)
        keep[index] = False
        chosen = self.domains.select(index)
        self.domains = self.domains.select(torch.nonzero(keep).flatten())
        return chosen

    def min_bound(self) -> float:
        return float("inf") if len(self) == 0 else float(self.domains.lower_bound.min())
