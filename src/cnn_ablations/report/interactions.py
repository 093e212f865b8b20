"""Two-way interactions of a factorial sweep (statsmodels), for ``stats.analyse``."""

import itertools

import pandas as pd

from cnn_ablations.overrides import SEED


def interactions(jobs: pd.DataFrame, levels: dict[str, list[str]]) -> pd.DataFrame:
    """Two-way interactions of a factorial sweep on test accuracy (points), from statsmodels.

    For each pair of factors an OLS model with every factor's main effect, seed as a block and
    the pair's interaction (treatment coding, each factor's reference level as its baseline):
    each interaction coefficient with its 95% interval, and the pair's F-test p-value (type-2
    ANOVA). For 2-level factors the coefficient is (A's effect at B's level) − (A's effect at
    B's reference).
    """
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    columns = ["factor_a", "level_a", "factor_b", "level_b", "interaction", "ci_low", "ci_high"]
    columns += ["p_value", "excludes_zero"]
    factors = list(levels)
    if len(factors) < 2 or jobs[SEED].nunique() < 2:
        return pd.DataFrame(columns=columns)
    names = {factor: f"f{i}" for i, factor in enumerate(factors)}  # formula-safe column names
    data = jobs.rename(columns={**names, "test/acc": "acc"}).astype({SEED: str})
    terms = {f: f"C({names[f]}, Treatment(reference={levels[f][0]!r}))" for f in factors}
    rows = []
    for a, b in itertools.combinations(factors, 2):
        main = " + ".join(terms.values())
        fit = smf.ols(f"acc ~ {main} + {terms[a]}:{terms[b]} + C({SEED})", data).fit()
        if fit.df_resid < 1:
            continue
        p_value = sm.stats.anova_lm(fit, typ=2)["PR(>F)"][f"{terms[a]}:{terms[b]}"]
        bounds = fit.conf_int(0.05)
        for level_a, level_b in itertools.product(levels[a][1:], levels[b][1:]):
            name = f"{terms[a]}[T.{level_a}]:{terms[b]}[T.{level_b}]"
            if name not in fit.params:
                continue
            low, high = bounds.loc[name]
            rows.append(
                {
                    "factor_a": a,
                    "level_a": level_a,
                    "factor_b": b,
                    "level_b": level_b,
                    "interaction": fit.params[name],
                    "ci_low": low,
                    "ci_high": high,
                    "p_value": p_value,
                    "excludes_zero": bool(low > 0 or high < 0),
                }
            )
    return pd.DataFrame(rows, columns=columns)
