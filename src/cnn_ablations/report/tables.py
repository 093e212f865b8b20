"""One table model, three renderings: terminal (rich), markdown and CSV, with the same columns.

CSV cells hold the raw numbers under snake_case names (for pandas and R); terminal and markdown
cells the formatted text under readable labels.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from rich import box
from rich.markup import escape
from rich.table import Table as RichTable

from cnn_ablations.budget import CONVERGED
from cnn_ablations.report.stats import REACHED, Analysis


def number(digits: int = 4, sign: bool = False) -> Callable[[object], str]:
    def fmt(value) -> str:
        if value is None or pd.isna(value):
            return ""
        return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"

    return fmt


def count(value) -> str:
    return "" if value is None or pd.isna(value) else f"{value:,.0f}"


def yes_no(value) -> str:
    return "yes" if value else "no"


def text(value) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


@dataclass
class Column:
    name: str  # the header in the terminal and markdown
    field: str  # the data's column
    fmt: Callable[[object], str] = text
    code: bool = False  # a config key or value: `backticks` in markdown; folds in a terminal
    prose: bool = False  # free text: folds in a terminal
    csv: str = ""  # the header in the CSV (snake_case); empty: ``field``
    terminal: bool = True  # False: a long note, in report.md and the CSV only

    @property
    def folds(self) -> bool:
        return self.code or self.prose

    @property
    def csv_name(self) -> str:
        return self.csv or self.field


@dataclass
class Table:
    title: str
    columns: list[Column]
    data: pd.DataFrame
    emphasis: dict[str, Callable[[object], bool]] = field(default_factory=dict)  # bold cells

    def cells(self) -> list[list[str]]:
        return [[c.fmt(row[c.field]) for c in self.columns] for _, row in self.data.iterrows()]

    def to_csv(self, path: Path) -> None:
        frame = self.data[[c.field for c in self.columns]]
        frame.set_axis([c.csv_name for c in self.columns], axis=1).to_csv(path, index=False)

    def to_markdown(self) -> str:
        def cell(column: Column, text: str, raw) -> str:
            text = text.replace("|", "\\|").replace("\n", " ")
            if column.code and text:
                text = f"`{text}`"
            if column.field in self.emphasis and self.emphasis[column.field](raw):
                text = f"**{text}**"
            return text

        header = "| " + " | ".join(c.name for c in self.columns) + " |"
        rule = "|" + "|".join("---" for _ in self.columns) + "|"
        body = [
            "| "
            + " | ".join(cell(c, c.fmt(row[c.field]), row[c.field]) for c in self.columns)
            + " |"
            for _, row in self.data.iterrows()
        ]
        return "\n".join([header, rule, *body])

    def to_rich(self, width: int) -> RichTable:
        """Numbers are never cut; text columns share what is left of ``width`` and fold."""
        shown = [i for i, c in enumerate(self.columns) if c.terminal]
        columns = [self.columns[i] for i in shown]
        cells = [[row[i] for i in shown] for row in self.cells()]
        widths = [max([len(c.name)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
        fixed = sum(w for w, c in zip(widths, columns, strict=True) if not c.folds)
        texts = sum(c.folds for c in columns) or 1
        text_width = max((width - fixed - 3 * len(columns)) // texts, 8)
        table = RichTable(title=self.title, box=box.SIMPLE_HEAD)
        for column, column_width in zip(columns, widths, strict=True):
            if column.folds:
                table.add_column(
                    column.name, overflow="fold", min_width=min(column_width, text_width)
                )
            else:
                table.add_column(column.name, justify="right", min_width=column_width)
        for row in cells:
            table.add_row(*(escape(cell) for cell in row))
        return table


# the columns the effects, claims and interactions tables share
CONTRAST_COLUMNS = [
    Column("factor", "factor", code=True),
    Column("level", "level", code=True),
    Column("vs", "reference", code=True),
]
CI_COLUMNS = [
    Column("95% CI low", "ci_low", number(2, sign=True)),
    Column("95% CI high", "ci_high", number(2, sign=True)),
]


# a planned-seeds sweep's (adaptive_seeds) seeds and its secondary, ordinary t-interval
PLANNED_COLUMNS = [
    Column("n needed (Stein)", "n_needed", count),
    Column("t-interval low (ignores the planned n)", "t_low", number(2, sign=True)),
    Column("t-interval high", "t_high", number(2, sign=True)),
]


def summary_table(analysis: Analysis) -> Table:
    """Per condition; the training columns follow the budget: at convergence the epochs, the
    best epoch and what stopped the jobs, at a fixed budget the learning-speed figures."""
    columns = [
        Column("condition", "condition", code=True),
        Column("n", "n", count),
        Column("test acc %", "test_acc_mean", number(2)),
        Column("± std", "test_acc_std", number(2)),
        Column("min", "test_acc_min", number(2)),
        Column("max", "test_acc_max", number(2)),
        Column("val acc best %", "val_acc_best_mean", number(2)),
    ]
    if analysis.budget is not None and analysis.budget.kind == CONVERGED:
        columns += [
            Column("epochs", "epochs_mean", number(1)),
            Column("best epoch", "best_epoch_mean", number(1)),
        ]
        if not analysis.budget.annealed:  # early stopping: what ended the jobs
            columns += [
                Column("stopped by patience", "stopped_by_patience", count),
                Column("at the cap, still improving", "still_improving", count),
            ]
    else:
        columns += [
            Column("epochs", "epochs_mean", number(1)),
            Column("val acc % at epoch 1", "val_acc_epoch1_mean", number(2)),
            Column("val acc % at the end", "val_acc_final_mean", number(2)),
            Column(f"epochs to {REACHED:.0%} of baseline best", "epochs_to_reach_mean", number(1)),
        ]
    columns += [
        Column("final train loss", "train_loss_mean", number(4)),
        Column("lr", "lr_mean", lambda v: "" if pd.isna(v) else f"{v:g}"),
        Column("params", "params_mean", count),
        Column("s/epoch", "sec_per_epoch_mean", number(2)),
    ]
    title = "Summary: one row per condition, mean over seeds (± sample std), best test acc first"
    return Table(title, columns, analysis.summary)


def settled_text(value) -> str:
    return "" if value is None or pd.isna(value) else "yes" if value else "NOT SETTLED"


def effects_table(analysis: Analysis) -> Table:
    """Each effect with one interval, the verdict's (Stein's where the seeds were planned,
    else the paired t), its verdict, and the budget check."""
    title = (
        "Effects on test accuracy (points; paired by seed; the verdict's 95% CI) and budget check"
    )
    planned = PLANNED_COLUMNS if analysis.effects["n_needed"].notna().any() else []
    columns = [
        *CONTRAST_COLUMNS,
        Column("n seeds", "n", count),
        Column("Δ test acc (points)", "effect", number(2, sign=True), csv="delta"),
        *CI_COLUMNS,
        Column("± half-width", "half_width", number(2), csv="halfwidth"),
        Column("interval", "interval", prose=True),
        Column("CI excludes 0", "excludes_zero", yes_no),
        Column("resolved (Holm)", "resolved", yes_no),
        Column("verdict", "verdict", prose=True),
        *planned,
        Column("val Δ at half budget", "val_effect_mid", number(2, sign=True), csv="val_delta_mid"),
        Column("val Δ at the end", "val_effect_end", number(2, sign=True), csv="val_delta_end"),
        Column("change half→end", "val_change", number(2, sign=True), csv="val_change"),
        Column("change 95% CI low", "change_low", number(2, sign=True)),
        Column("change 95% CI high", "change_high", number(2, sign=True)),
        Column("settled at this budget", "settled", settled_text),
    ]
    return Table(title, columns, analysis.effects, emphasis={"excludes_zero": bool})


def claims_table(analysis: Analysis) -> Table:
    columns = [
        Column("the literature", "claim", prose=True),
        Column("about", "budget", prose=True),
        Column("source", "source", prose=True),
        Column("this setting", "setting", prose=True, terminal=False),
        *CONTRAST_COLUMNS,
        Column("expected", "expected", prose=True),
        Column("Δ (points)", "effect", number(2, sign=True), csv="delta"),
        *CI_COLUMNS,
        Column("verdict", "verdict", prose=True),
    ]
    title = "Claims: what the literature reports, and what this sweep measured"
    return Table(title, columns, analysis.claims)


def interactions_table(analysis: Analysis) -> Table:
    columns = [
        Column("factor A", "factor_a", code=True),
        Column("level A", "level_a", code=True),
        Column("factor B", "factor_b", code=True),
        Column("level B", "level_b", code=True),
        Column("interaction (points)", "interaction", number(2, sign=True)),
        *CI_COLUMNS,
        Column("p (F-test)", "p_value", number(4)),
        Column("CI excludes 0", "excludes_zero", yes_no),
    ]
    title = "Two-way interactions on test accuracy (points; OLS, seed as a block)"
    return Table(title, columns, analysis.interactions, emphasis={"excludes_zero": bool})
