"""What the literature reports for each ablation, set against what a sweep measured.

Each claim is a change of one config key (``worse`` -> ``better``), the direction the
literature finds on accuracy, and the budget it is about: ``converged`` training (what a choice
is worth once trained) or ``speed`` of learning (accuracy after a short fixed budget). An effect
of the sweep matches a claim when its level changes that key (a factorial sweep's own key, or the
key a variant changes: runs.csv's ``config:`` columns). A study judges only the claims of
its own budget; the others read *not tested at this budget*. Verdict, from the effect's
(``seeds.verdicts``): *agrees* when it is resolved (Holm across the study's effects) on the
claimed side, *contradicts* when on the other, else *no practical difference (within ±d)* or
*inconclusive at this n*; an effect its budget check finds not settled says so.
"""

from dataclasses import dataclass

import pandas as pd

from cnn_ablations.budget import CONVERGED, SPEED, Budget
from cnn_ablations.report.budget_check import unsettled
from cnn_ablations.report.runs import CONFIG

NOT_AT_BUDGET = "not tested at this budget"


@dataclass(frozen=True)
class Claim:
    key: str  # the config key the ablation changes
    better: str  # the value the literature finds better for accuracy
    worse: str
    statement: str
    source: str
    budget: str  # CONVERGED or SPEED: what the claim is about
    setting: str = ""  # where this project's setting differs from the source's


CLAIMS = [
    Claim(
        "model.activation", "relu", "sigmoid",
        "ReLU units learn faster than saturating ones; d2l's sigmoid LeNet needs lr 0.9",
        "Krizhevsky et al. 2012, Fig. 1; d2l (LeNet)", SPEED,
    ),
    Claim(
        "model.activation", "relu", "tanh",
        "ReLU units learn faster than tanh: a 4-layer CNN reached 25% training error on "
        "CIFAR-10 six times sooner",
        "Krizhevsky et al. 2012, Fig. 1", SPEED,
    ),
    Claim(
        "model.pool", "max", "avg",
        "max pooling gives lower error than subsampling (average-type pooling)",
        "Scherer, Müller & Behnke 2010 (ICANN)", CONVERGED,
    ),
    Claim(
        "model.pool", "max", "subsample",
        "max pooling gives lower error than (trainable) subsampling",
        "Scherer, Müller & Behnke 2010 (ICANN)", CONVERGED,
    ),
    Claim(
        "model.batchnorm", "true", "false",
        "BatchNorm trains faster; d2l's BN-LeNet scores several points higher at the same "
        "10-epoch budget",
        "Ioffe & Szegedy 2015; d2l's BN-LeNet on Fashion-MNIST", SPEED,
    ),
    Claim(
        "model.dropout", "0.0", "0.5",
        "dropout slows convergence (AlexNet: roughly twice the iterations), so it costs "
        "accuracy at a short budget",
        "Krizhevsky et al. 2012, Sec. 4.2; Srivastava et al. 2014", SPEED,
    ),
    Claim(
        "model.dropout", "0.5", "0.0",
        "dropout reduces overfitting: lower test error once trained",
        "Srivastava et al. 2014 (JMLR)", CONVERGED,
    ),
    Claim(
        "model.c3", "lecun", "full",
        "the partial C3 table breaks symmetry with fewer connections (argued, no number)",
        "LeCun et al. 1998, Sec. II-B", CONVERGED,
    ),
    Claim(
        "model.head", "rbf", "softmax",
        "fixed distributed RBF codes are argued for over a plain output (no number)",
        "LeCun et al. 1998, Sec. II-B", CONVERGED,
    ),
    Claim(
        "model.lrn", "true", "false",
        "local response normalisation lowers error (ImageNet −1.4% top-1; CIFAR-10 13% -> 11%)",
        "Krizhevsky et al. 2012, Sec. 3.3", CONVERGED,
        "a 0.54M-parameter AlexNet-lite on 32x32 images, not 224x224 ImageNet; LRN after conv1 "
        "and conv2 with the paper's k, n, α, β",
    ),
    Claim(
        "model.overlap_pool", "true", "false",
        "overlapping pooling lowers error (−0.4% top-1) and overfits slightly less",
        "Krizhevsky et al. 2012, Sec. 3.4", CONVERGED,
        "3 pooling stages on 32x32 inputs (the paper: 3 on 224x224); a 0.4-point effect needs "
        "more seeds than ±1.0 resolves",
    ),
    Claim(
        "data.augment.pca_sigma", "0.1", "0.0",
        "PCA colour augmentation lowers top-1 error by over 1%",
        "Krizhevsky et al. 2012, Sec. 4.1", CONVERGED,
        "on mnist5k_color and fashion_mnist_color the colour is synthetic (one random "
        "foreground/background pair per image): this tests invariance to a colour nuisance, not "
        "the paper's claim about lighting in photographs",
    ),
    Claim(
        "choices.model", "alexnet_lite", "lenet5",
        "a deeper, wider network is more accurate once trained: removing any middle conv "
        "layer of AlexNet costs about 2% top-1",
        "Krizhevsky et al. 2012, Sec. 6", CONVERGED,
        "AlexNet-lite (5 conv + 3 FC, 0.54M parameters) vs LeNet-5 (62k) on 32x32 images, not "
        "a layer removed from a 60M-parameter network trained on 1.2M images",
    ),
]  # fmt: skip


def level_changes(
    configs_by_job: dict[str, dict], jobs: pd.DataFrame, factor: str, level: str, reference: str
) -> dict:
    """Config key -> (reference value, level value) that the level changes: keys with one value
    in all of the level's jobs and another in all of the reference's (runs' dirs and seeds,
    which vary within a level, drop out). ``configs_by_job``: job name -> flat config."""
    configs: dict[str, list[dict]] = {level: [], reference: []}
    for name, value in jobs[["job", factor]].itertuples(index=False):
        if value in configs:
            configs[value].append(configs_by_job[name])

    def constant(rows: list[dict]) -> dict:
        if not rows:
            return {}
        return {k: v for k, v in rows[0].items() if all(r.get(k) == v for r in rows[1:])}

    at_level, at_reference = constant(configs[level]), constant(configs[reference])
    return {
        key: (at_reference[key], value)
        for key, value in at_level.items()
        if key in at_reference and at_reference[key] != value
    }


def verdict(claim: Claim, effect, direction: int, budget: Budget | None) -> str:
    """The verdict on ``claim`` of one row of the effects table (see the module docstring)."""
    if budget is None or claim.budget != budget.kind:
        return NOT_AT_BUDGET
    if effect.resolved:
        found = "agrees" if effect.effect * direction > 0 else "contradicts"
    else:  # "no practical difference (within ±d)" or "inconclusive at this n"
        found = effect.verdict
    return f"{found} (effect not settled at this budget)" if unsettled(effect.settled) else found


def measured_claims(
    runs: pd.DataFrame, jobs: pd.DataFrame, effects: pd.DataFrame, budget: Budget | None
) -> pd.DataFrame:
    """One row per effect that a claim covers: the claim, its budget and source, the measured
    Δ and CI (points), and the verdict. ``jobs``, ``effects``, ``budget`` as in
    ``stats.Analysis`` (``effects`` with ``seeds.verdicts``' columns)."""
    columns = [c for c in runs.columns if c.startswith(CONFIG)]
    configs_by_job = {  # a level's settings (and group choices: model=alexnet_lite, choices.model)
        row["job"]: {c.removeprefix(CONFIG): row[c] for c in columns if isinstance(row[c], str)}
        for _, row in runs[columns + ["job"]].iterrows()
    }
    rows = []
    for effect in effects.itertuples():
        changes = level_changes(configs_by_job, jobs, effect.factor, effect.level, effect.reference)
        # a changed group choice (model=lenet5 -> alexnet_lite) changes many of its keys at
        # once (model.dropout 0 -> 0.5): no claim about one of those keys is judged by it
        swapped = {key.removeprefix("choices.") for key in changes if key.startswith("choices.")}
        for claim in CLAIMS:
            if claim.key not in changes or set(changes[claim.key]) != {claim.better, claim.worse}:
                continue
            if claim.key.split(".")[0] in swapped:
                continue
            direction = 1 if changes[claim.key][1] == claim.better else -1
            rows.append(
                {
                    "claim": claim.statement,
                    "budget": claim.budget,
                    "source": claim.source,
                    "setting": claim.setting,
                    "factor": effect.factor,
                    "level": effect.level,
                    "reference": effect.reference,
                    "expected": "higher" if direction > 0 else "lower",
                    "effect": effect.effect,
                    "ci_low": effect.ci_low,
                    "ci_high": effect.ci_high,
                    "verdict": verdict(claim, effect, direction, budget),
                }
            )
    columns = ["claim", "budget", "source", "setting", "factor", "level", "reference", "expected"]
    return pd.DataFrame(rows, columns=[*columns, "effect", "ci_low", "ci_high", "verdict"])
