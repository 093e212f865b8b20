"""``runs.csv``: one row per job of a sweep, the one table every report is computed from.

:func:`runs_frame` reads a sweep's records into it (the report's only reader of results.json and
metrics.csv); :func:`read_runs` reads a ``runs.csv`` back. A row holds the job's factor levels
(one column per swept key), seed, status and metrics (accuracies in percent), its budget, how it
was computed, its per-epoch curves (JSON lists), the seeds plan of an ``adaptive_seeds`` sweep,
and ``config:<key>`` for each config key that differs between conditions (what the claims are
matched by). ``python -m cnn_ablations.report --runs runs.csv`` rebuilds a report from it alone.
"""

import io
import json
import math
from pathlib import Path

import pandas as pd

from cnn_ablations.budget import Budget, budget_of
from cnn_ablations.errors import ConfigError
from cnn_ablations.overrides import SEED
from cnn_ablations.sweepdir import Sweep, read_plan

RUNS_FILE = "runs.csv"
PATHS = "paths."  # overrides of where a job's files went: the machine's, not the study's
UNSET = "(default)"  # the level of a factor in a job that does not override it
CONFIG = "config:"  # prefix of the columns holding a config key that differs between conditions
# percent, per epoch (from 1): val/acc and train/loss as logged, as JSON lists
CURVES = {"val/acc": "val_acc_by_epoch", "train/loss": "train_loss_by_epoch"}
BUDGET = {f"budget_{name}": name for name in Budget.__dataclass_fields__}
PLAN = ["plan_halfwidth", "plan_first", "plan_max", "plan_seed_pool"]
BOOLEAN = ["budget_annealed"]
TEXT = [
    "job", "sweep", "status", "stopped_by", "started_at", "finished_at", "budget_kind",
    "budget_monitor", "precision", "memory_format", "device", "cpu", "wandb_group", "wandb_run",
    "overrides",
    *CURVES.values(), "plan_seed_pool", "error",
]  # fmt: skip
COLUMNS = [
    "job", "sweep", SEED, "status", "test_acc", "val_acc_best", "train_loss", "epochs",
    "best_epoch", "stopped_by", "sec_per_epoch", "params", "lr", "val_acc_epoch1",
    "val_acc_final", "val_acc_best_at_half", "val_acc_best_at_end", "started_at", "finished_at",
    *BUDGET, "precision", "memory_format", "threads", "parallel_jobs", "device", "cpu",
    "wandb_group", "wandb_run", *PLAN, "overrides", *CURVES.values(), "error",
]  # fmt: skip


def config_text(value) -> str:
    """A config value as runs.csv and the claims spell it (``True`` -> ``true``)."""
    return str(value).lower()


def flat_config(config: dict, prefix: str = "") -> dict[str, str]:
    """``{"model": {"pool": "max"}}`` -> ``{"model.pool": "max"}`` (values as text)."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat |= flat_config(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = config_text(value)
    return flat


def epoch_curves(csv_path: Path) -> pd.DataFrame:
    """Per-epoch ``val/acc`` and ``train/loss`` from a CSVLogger file: last non-null per epoch."""
    rows = pd.read_csv(csv_path).dropna(subset=["epoch"])
    present = [m for m in CURVES if m in rows.columns]
    curves = rows.groupby("epoch")[present].last().reindex(columns=list(CURVES))
    curves.index = curves.index.astype(int)
    return curves.reset_index()


def running_best(val_acc: list[float], epochs: int) -> float:
    """The best val/acc of the first ``epochs`` epochs: what a checkpoint kept at that budget
    would score."""
    values = [v for v in val_acc[:epochs] if not math.isnan(v)]
    return max(values) if values else math.nan


def curve_figures(job, row: dict) -> dict:
    """From an ok job's metrics.csv: its curves, val/acc at epoch 1 and at its last epoch, the
    best val/acc at half of its epochs and at its end (the budget check's inputs), and its best
    epoch where the record predates ``best_epoch``."""
    name = job.record.metrics_csv if job.ok else None
    path = job.path / str(name)
    if not name or not path.is_file():
        return {}
    curve = epoch_curves(path)
    val_acc = [100 * v for v in curve["val/acc"]]
    figures = {CURVES[m]: json.dumps([float(v) for v in curve[m]]) for m in CURVES}
    figures[CURVES["val/acc"]] = json.dumps(val_acc)
    trained = int(row["epochs"] or sum(not math.isnan(v) for v in val_acc))
    figures["val_acc_epoch1"] = val_acc[0] if val_acc else None
    figures["val_acc_final"] = val_acc[trained - 1] if 0 < trained <= len(val_acc) else None
    figures["val_acc_best_at_half"] = running_best(val_acc, math.ceil(trained / 2))
    figures["val_acc_best_at_end"] = running_best(val_acc, trained)
    if row["best_epoch"] is None and any(not math.isnan(v) for v in val_acc):
        figures["best_epoch"] = max(range(len(val_acc)), key=lambda i: val_acc[i]) + 1
    return figures


def condition_configs(sweep: Sweep) -> dict[str, dict[str, str]]:
    """Job name -> ``config:<key>`` of its ok config, for the keys (its config's and its group
    choices', ``choices.model``) that differ between conditions and not between a condition's
    seeds (a level's settings, not its seed or its dirs)."""
    flat = {
        job.name: flat_config(job.config) | flat_config({"choices": job.record.choices})
        for job in sweep.ok
    }
    condition = {job.name: tuple(job.level(k) for k in sweep.factors) for job in sweep.ok}
    keys = sorted(set().union(*flat.values())) if flat else []
    kept = []
    for key in keys:
        by_condition: dict[tuple, set] = {}
        for name, config in flat.items():
            by_condition.setdefault(condition[name], set()).add(config.get(key))
        values = set().union(*by_condition.values())
        if len(values) > 1 and all(len(v) == 1 for v in by_condition.values()):
            kept.append(key)
    return {name: {CONFIG + k: config.get(k) for k in kept} for name, config in flat.items()}


def level_rank(sweep: Sweep, key: str, level: str | None) -> tuple:
    """Where ``level`` stands among ``key``'s levels: the order the sweep lists them in, then
    numbers numerically, then text."""
    listed = sweep.swept.get(key, [])
    if level in listed:
        return (0, listed.index(level), 0.0, "")
    try:
        return (1, 0, float(level), "")
    except (TypeError, ValueError):
        return (2, 0, 0.0, str(level))


def runs_frame(sweep: Sweep) -> pd.DataFrame:
    """One row per job of ``sweep``, ok or not (columns: the module docstring), in the order the
    sweep lists its factors' levels, then by seed: a factor's reference is its first level."""
    clash = [key for key in sweep.factors if key in COLUMNS]
    if clash:
        raise ConfigError(
            f"the sweep varies {clash[0]}, which runs.csv names a column of its own: its report "
            "cannot tell them apart; sweep the setting under another key"
        )
    plan = read_plan(sweep.path)
    configs = condition_configs(sweep)
    rows = []
    for job in sweep.jobs:
        record, metrics = job.record, job.metrics
        compute = record.compute if record else None
        budget = budget_of(job.config, record.choices) if job.config and record else None
        row = {
            "job": job.name,
            "sweep": f"{sweep.name}/{sweep.path.name}",
            **{key: job.level(key) or UNSET for key in sweep.factors},
            SEED: job.seed,
            "status": job.status,
            "test_acc": None if metrics.test_acc is None else 100 * metrics.test_acc,
            "val_acc_best": None if metrics.val_acc_best is None else 100 * metrics.val_acc_best,
            "train_loss": metrics.train_loss,
            "epochs": metrics.epochs,
            "best_epoch": metrics.best_epoch,
            "stopped_by": metrics.stopped_by,
            "sec_per_epoch": metrics.sec_per_epoch,
            "params": metrics.params,
            "lr": (job.config.get("optimizer") or {}).get("lr"),
            "started_at": stamp(record.started_at if record else None),
            "finished_at": stamp(record.finished_at if record else None),
            **{column: getattr(budget, name, None) for column, name in BUDGET.items()},
            **(compute_columns(compute) if compute else {}),
            "wandb_group": record.group if record else None,
            "wandb_run": record.wandb.id if record and record.wandb else None,
            "overrides": json.dumps([o for o in job.overrides if not o.startswith(PATHS)]),
            "error": None if job.ok else job.error,
        }
        if plan:
            row |= {"plan_halfwidth": plan["halfwidth"], "plan_first": plan["first"]}
            row |= {"plan_max": plan["max"], "plan_seed_pool": json.dumps(plan.get("seed_pool"))}
        row |= curve_figures(job, row) | configs.get(job.name, {})
        rows.append(row)
    config_columns = sorted({c for r in rows for c in r if c.startswith(CONFIG)})
    frame = pd.DataFrame(rows, columns=[*COLUMNS[:2], *sweep.factors, *COLUMNS[2:]])
    frame = pd.concat([frame, pd.DataFrame(rows, columns=config_columns)], axis=1)
    order = sorted(
        range(len(rows)),
        key=lambda i: (
            *(level_rank(sweep, key, rows[i][key]) for key in sweep.factors),
            math.inf if rows[i][SEED] is None else rows[i][SEED],
            rows[i]["job"],
        ),
    )
    return frame.iloc[order].reset_index(drop=True)


def compute_columns(compute) -> dict:
    """How a job computed (its record's ``compute``), as runs.csv's columns."""
    facts = compute.model_dump(exclude={"native_bf16", "channels_last"})
    return facts | {"memory_format": "channels_last" if compute.channels_last else "contiguous"}


def stamp(seconds: float | None) -> str | None:
    """A record's Unix time as ISO 8601 in UTC."""
    return None if seconds is None else pd.Timestamp(seconds, unit="s", tz="UTC").isoformat()


def factors_of(runs: pd.DataFrame) -> list[str]:
    """The factor columns of a runs table: those that are neither fixed nor ``config:``."""
    return [c for c in runs.columns if c not in COLUMNS and not c.startswith(CONFIG)]


def read_runs(source: Path | str | io.StringIO) -> pd.DataFrame:
    """A ``runs.csv`` (a path or a buffer) as :func:`runs_frame` wrote it: factor levels and
    config values as text, empty cells as missing; every column there, numbers in the number
    columns, or one ``ConfigError`` line that names what is not."""
    try:
        header = pd.read_csv(source, nrows=0).columns
        if isinstance(source, io.StringIO):
            source.seek(0)
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
            raise ValueError(f"no column {', '.join(missing[:4])}{more}")
        text = [c for c in header if c in TEXT or c not in COLUMNS]
        runs = pd.read_csv(
            source, dtype=dict.fromkeys(text, str), keep_default_na=False, na_values=[""]
        )
        for column in (c for c in COLUMNS if c not in TEXT and c not in BOOLEAN):
            numbers = pd.to_numeric(runs[column], errors="coerce")
            wrong = runs[column].notna() & numbers.isna()
            if wrong.any():
                row = runs[wrong].iloc[0]
                raise ValueError(f"{column} is {row[column]!r} for job {row['job']}, not a number")
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise ConfigError(
            f"{source} is not a readable runs.csv ({str(err).splitlines()[0]}); the report "
            "of a sweep writes one: python -m cnn_ablations.report SWEEP_DIR"
        ) from None
    return runs


def parsed(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` as :func:`read_runs` would read it back from its CSV: the records' frame and a
    rebuild from ``runs.csv`` then give the report identical numbers."""
    return read_runs(io.StringIO(runs.to_csv(index=False)))


def budget_from(row) -> Budget | None:
    """The budget of one row of a runs table (None without one)."""
    if pd.isna(row["budget_kind"]):
        return None

    def value(column: str):
        found = row[column]
        return None if pd.isna(found) else found

    fields = {name: value(column) for column, name in BUDGET.items()}
    for name in ("epochs", "patience"):
        fields[name] = None if fields[name] is None else int(fields[name])
    fields["annealed"] = str(fields["annealed"]).lower() == "true"
    return Budget(**fields)
