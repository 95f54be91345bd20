"""Mean, standard deviation and count of a list of per-item values: one row of a report table.

``summarize([0.81, None, 0.79])`` leaves out missing values (None, NaN: a face that was not found) and counts
them, so a report can say "0.80 +- 0.01 over 2 (1 failed)". ``std`` is the sample standard deviation (n - 1),
None for fewer than two values. A value of +inf (PSNR of identical images) makes the mean +inf and the std None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    mean: float | None  # None when no value was given
    std: float | None  # sample standard deviation (n - 1); None for n < 2
    count: int  # values that entered mean and std
    missing: int = 0  # None / NaN values left out

    def to_dict(self) -> dict:
        return {
            "mean": json_float(self.mean),
            "std": json_float(self.std),
            "count": self.count,
            "missing": self.missing,
        }


def summarize(values) -> Summary:
    """Summary of an iterable of numbers, None and NaN left out (and counted as missing)."""
    kept, missing = [], 0
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            missing += 1
        else:
            kept.append(float(v))
    n = len(kept)
    if n == 0:
        return Summary(None, None, 0, missing)
    mean = math.fsum(kept) / n
    if n < 2 or math.isinf(mean):
        return Summary(mean, None, n, missing)
    var = math.fsum((v - mean) ** 2 for v in kept) / (n - 1)
    return Summary(mean, math.sqrt(var), n, missing)


def json_float(x: float | None):
    """A float as strict JSON can hold it: +-inf as the strings "inf" / "-inf", NaN as None."""
    if x is None or math.isnan(x):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(x)
