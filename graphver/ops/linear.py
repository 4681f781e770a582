"""Linear combinations ``y = W x + b`` (sums, differences, negation, constant scaling).

Linear instructions store W in coordinate form (``rows``, ``cols``, ``weights``) so that sparse graphs
stay cheap. Their interval is exact up to rounding: ``sum(w+ * l + w- * u) + b``. The rounding of a sum of
n products is at most ``gamma_n * sum |w| |x|`` with ``gamma_n = n*eps/(1 - n*eps)``; one more term covers
rounding of the margin itself. The stored coefficients differ from the model's exact constants by at most
``weight_error`` and ``bias_error`` (recorded by the compiler), which adds ``sum(weight_error*|x|) + bias_error``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphver.rounding import eps_of, gamma, sanitize_lower, sanitize_upper, tiny_of


def linear_interval(
    rows: Tensor,
    cols: Tensor,
    weights: Tensor,
    bias: Tensor,
    fan_in: int,
    lower: Tensor,
    upper: Tensor,
    weight_error: Tensor,
    bias_error: Tensor,
) -> tuple[Tensor, Tensor]:
    """Sound interval of ``W x + b`` for x in [lower, upper] (both [B, N]); returns two [B, k] tensors.

    ``weight_error``/``bias_error`` bound the distance of the stored floats from the model's exact constants.
    """
    positive = weights > 0
    lo_src = torch.where(positive, lower[:, cols], upper[:, cols])
    hi_src = torch.where(positive, upper[:, cols], lower[:, cols])
    k = bias.shape[0]
    base = bias.expand(lower.shape[0], k)
    low = base.clone().index_add(1, rows, lo_src * weights)
    high = base.clone().index_add(1, rows, hi_src * weights)
    magnitude = torch.maximum(lower[:, cols].abs(), upper[:, cols].abs())
    scale = base.abs().clone().index_add(1, rows, magnitude * weights.abs())
    constants = bias_error.expand(lower.shape[0], k).clone().index_add(1, rows, magnitude * weight_error)
    margin = gamma(fan_in + 2, eps_of(lower)) * (scale + constants) + constants + tiny_of(lower)
    return sanitize_lower(low - margin), sanitize_upper(high + margin)
