"""The budget check of an effect (is it still moving between half of training and its end?)
and the paired t-interval it and the effects use."""

import math

import pandas as pd
from scipy import stats


def paired_interval(diffs: pd.Series, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of paired differences and its t-interval (NaN bounds when n < 2)."""
    n, mean = len(diffs), diffs.mean()
    if n < 2:
        return mean, math.nan, math.nan
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * diffs.std(ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


def point_verdict(diffs: pd.Series, halfwidth: float | None) -> str | None:
    """What a paired effect's t-interval says at one point of training: ``higher``, ``lower``
    (it excludes 0), ``within`` (inside ±``halfwidth``) or ``inconclusive``; None: n < 2."""
    mean, low, high = paired_interval(diffs)
    if pd.isna(low):
        return None
    if low > 0 or high < 0:
        return "higher" if mean > 0 else "lower"
    if halfwidth and -halfwidth <= low and high <= halfwidth:
        return "within"
    return "inconclusive"


def budget_check(mid: pd.Series, end: pd.Series, halfwidth: float | None) -> dict:
    """Is an effect still moving? ``mid``, ``end``: its paired differences by seed on the best
    val/acc at half of each job's epochs and at its end. The change per seed, end − mid, has a
    mean and a 95% t-interval; the effect is *not settled* when that interval excludes 0, or
    when its verdict reverses between the two points: resolved in one direction at one point
    and in the other at the other (:func:`point_verdict`). It flags about 5% of effects that
    do not move (tests/test_budget.py measures it): a verdict that only moves between "within
    ±d" and "inconclusive" is left to the change's interval, since that move alone happens by
    chance far more often than 5% near the ±d boundary."""
    both = mid.index.intersection(end.index)
    change = (end[both] - mid[both]).dropna()
    mean, low, high = paired_interval(change)
    if pd.isna(low):
        return {"val_change": mean, "change_low": low, "change_high": high, "settled": None}
    moved = bool(low > 0 or high < 0)
    directions = {point_verdict(mid[both], halfwidth), point_verdict(end[both], halfwidth)}
    flipped = directions == {"higher", "lower"}
    return {
        "val_change": mean,
        "change_low": low,
        "change_high": high,
        "settled": not (moved or flipped),
    }


def unsettled(settled) -> bool:
    """An effect's budget check found it still moving (``settled`` False, not None or NaN)."""
    return not pd.isna(settled) and not settled
