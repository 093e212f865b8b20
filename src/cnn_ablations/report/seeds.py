"""Intervals and verdicts that stay valid when the data chose how many seeds an effect got (the
``hydra/sweeper=adaptive_seeds`` design, docs/sweeps.md; its planner is ``report/planning.py``).

Stein's two-stage procedure (Stein 1945) on an effect's paired differences d_s (seed s): stage 1
gives n1 of them with sample standard deviation s1; taking

    n = max(n1, ceil((t_{0.975, n1-1} · s1 / d)²))

in all makes the fixed-width interval mean ± d cover the effect with probability ≥ 95% under
normality. Whatever n was taken as a function of s1 (capped at ``max``, or short of the plan
because jobs failed), √n · (mean − effect) / s1 follows Student's t with n1 − 1 degrees of
freedom, so mean ± t_{0.975, n1-1} · s1 / √n covers with exactly 95%: the interval this module
reports. When the plan's n was reached its half-width is at most d.

The ordinary t-interval on the same n differences ignores that n depended on s1: it covers less
than 95% (tests/test_seeds.py measures it), so the report labels it as such next to Stein's.
"""

import math

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

CONFIDENCE = 0.95
RESOLVED = "resolved"
EQUIVALENT = "no practical difference (within ±{d:g})"
INCONCLUSIVE = "inconclusive at this n"


def t_quantile(df):
    """Student's t quantile for a two-sided 95% interval with ``df`` degrees of freedom."""
    return stats.t.ppf(0.5 + CONFIDENCE / 2, df)


def stein_halfwidth(s1, n1: int, n):
    """Half-width of Stein's exact 95% interval after n differences: t(n1−1)·s1/√n."""
    return t_quantile(n1 - 1) * np.asarray(s1, dtype=float) / np.sqrt(n)


def stein_p_value(mean, s1, n1: int, n):
    """Two-sided p of "effect = 0" from Stein's statistic √n·mean/s1 ~ t(n1−1); 1 when the
    differences are all 0."""
    mean, s1 = np.asarray(mean, dtype=float), np.asarray(s1, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.abs(mean) * np.sqrt(n) / s1
    return np.where(mean == 0, 1.0, 2 * stats.t.sf(statistic, n1 - 1))


# --- the report --------------------------------------------------------------------------------


def verdicts(
    effects: pd.DataFrame, differences: dict[tuple[str, str], pd.Series], plan: dict | None
) -> pd.DataFrame:
    """``effects`` (``stats.effects``) with Stein's interval where a plan covers the effect, the
    p-value, the family's *resolved* and the verdict.

    Stein's interval: the mean of the differences at the effect's planned seeds
    ± t(n1−1)·s1/√n, which :func:`one_interval` makes the effect's interval (``n_needed``, and
    ``interval``: whether n was reached, or the cap). p: Stein's statistic
    where planned, else the paired t-test's (Stein's with n1 = n). *resolved*: Holm-adjusted
    p < 0.05 across the study's effects (Holm 1979); else *no practical difference (within ±d)*
    when the effect's interval (Stein's, else the t-interval) lies inside ±d, the plan's
    half-width; else *inconclusive at this n*. ``differences``: (factor, level) -> d by seed.
    """
    halfwidth = plan["halfwidth"] if plan else None
    planned = {(e["factor"], e["level"]): e for e in (plan or {}).get("effects", [])}
    rows = []
    for effect in effects.itertuples():
        diffs = differences[(effect.factor, effect.level)]
        entry = planned.get((effect.factor, effect.level))
        row = {"n_needed": math.nan, "n_stein": math.nan, "stein_effect": math.nan}
        row |= {"stein_low": math.nan, "stein_high": math.nan, "interval": ""}
        low, high = effect.ci_low, effect.ci_high
        if entry and entry["s1"] is not None:
            diffs = diffs[diffs.index.isin(entry["seeds"])]
            n, n1, s1, mean = len(diffs), entry["n1"], entry["s1"], float(diffs.mean())
            half = float(stein_halfwidth(s1, n1, n))
            low, high = mean - half, mean + half
            if entry["capped"]:
                note = f"cap reached: n={n} of {entry['n_needed']} needed"
            elif n < entry["n_needed"]:
                note = f"short of the plan: n={n} of {entry['n_needed']} (failed jobs)"
            else:
                note = f"n reached: ±{half:.2f} ≤ ±{halfwidth:g}"
            row |= {"n_needed": entry["n_needed"], "n_stein": n, "stein_effect": mean}
            row |= {"stein_low": low, "stein_high": high, "interval": note}
            row["p_value"] = float(stein_p_value(mean, s1, n1, n))
        elif len(diffs) >= 2:
            n = len(diffs)  # the paired t-test: Stein's statistic with n1 = n
            row["p_value"] = float(stein_p_value(diffs.mean(), diffs.std(ddof=1), n, n))
        else:
            row["p_value"] = math.nan
        row["inside"] = bool(halfwidth and low >= -halfwidth and high <= halfwidth)
        rows.append(row)
    columns = ["n_needed", "n_stein", "stein_effect", "stein_low", "stein_high", "interval"]
    added = pd.DataFrame(rows, index=effects.index, columns=[*columns, "p_value", "inside"])
    tested = added["p_value"].notna()
    added["resolved"] = False
    if tested.any():
        reject = multipletests(added.loc[tested, "p_value"], alpha=1 - CONFIDENCE, method="holm")[0]
        added.loc[tested, "resolved"] = reject
    equivalent = EQUIVALENT.format(d=halfwidth or 0)
    added["verdict"] = [
        RESOLVED if resolved else equivalent if inside else INCONCLUSIVE
        for resolved, inside in zip(added["resolved"], added["inside"], strict=True)
    ]
    return one_interval(pd.concat([effects, added.drop(columns="inside")], axis=1))


def one_interval(effects: pd.DataFrame) -> pd.DataFrame:
    """Every effect with one interval, the verdict's: where the seeds were planned, ``n``,
    ``effect``, ``ci_low``, ``ci_high``, ``half_width`` and ``excludes_zero`` become Stein's, and
    the ordinary t-interval moves to ``t_effect``, ``t_low``, ``t_high`` (it ignores that the
    data chose n: a secondary figure); ``interval`` names the interval shown."""
    out = effects.copy()
    planned = out["n_needed"].notna()  # a plan covers it (its interval may be NaN: no pairs)
    out["t_effect"] = out["effect"].where(planned)
    out["t_low"] = out["ci_low"].where(planned)
    out["t_high"] = out["ci_high"].where(planned)
    for primary, stein in [
        ("n", "n_stein"),
        ("effect", "stein_effect"),
        ("ci_low", "stein_low"),
        ("ci_high", "stein_high"),
    ]:
        out[primary] = out[stein].where(planned, out[primary])
    out["n"] = out["n"].astype(int)
    out["half_width"] = (out["ci_high"] - out["ci_low"]) / 2
    out["excludes_zero"] = (out["ci_low"] > 0) | (out["ci_high"] < 0)
    out["interval"] = [
        f"Stein's ({note})" if is_planned else "paired t"
        for is_planned, note in zip(planned, out["interval"], strict=True)
    ]
    return out.drop(columns=["n_stein", "stein_effect", "stein_low", "stein_high"])
