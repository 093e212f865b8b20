"""User-facing errors: one line that names the key, the value and the fix; the exit codes.

Every check of a setting goes through the ``check_*`` family below (models, data module,
``validate``). A library that rejects a setting (Lightning, torch, a constructor) is translated
by :func:`rejected_settings` where components are instantiated and fitted, and Hydra's own
composition errors by ``outcome.describe_hydra_error`` in the entry point: one depth each, not
per key. Any other exception is put on one line by :func:`one_line`.
"""

import errno
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cnn_ablations.overrides import override_key, override_value

EXIT_FAILED = 1  # the job ran and failed (non-finite loss, a crash, a full disk)
EXIT_CONFIG = 2  # a setting or an input file is wrong; nothing was trained
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT); SIGTERM 143, SIGHUP 129: 128 + the signal
DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


class ConfigError(ValueError):
    """A bad setting or missing input the user can fix; printed as one line, exit 2."""


class JobFailed(RuntimeError):
    """Training itself went wrong (e.g. a non-finite loss): one line, exit 1; a sweep goes on.
    ``what`` happened is what ``results.json`` records; the line adds the ``fix``."""

    def __init__(self, what: str, fix: str):
        super().__init__(f"{what}; {fix}")
        self.what = what


# --- the check_* family ------------------------------------------------------------------------


def check_choice(key: str, value, choices: Iterable) -> None:
    """``value`` must be one of ``choices``."""
    choices = list(choices)
    if not any(value == c and type(value) is type(c) for c in choices):  # 1 is not True
        valid = ", ".join(str(c) for c in choices)
        raise ConfigError(f"{key}={value!r} is not valid; choose one of: {valid}")


def check_bool(key: str, value) -> None:
    """``value`` must be true or false."""
    check_choice(key, value, (False, True))


def check_int(key: str, value, minimum: int = 1, maximum: int | None = None) -> None:
    """``value`` must be an integer >= ``minimum`` (and <= ``maximum``)."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if not is_int or value < minimum or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
        raise ConfigError(f"{key}={value!r} is not valid; it must be an integer {bounds}")


def check_number(
    key: str,
    value,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    above: float | None = None,
    below: float | None = None,
) -> None:
    """``value`` must be a finite number within the bounds (``above``/``below``: exclusive)."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    ok = is_number and math.isfinite(value)
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    ok = ok and (above is None or value > above) and (below is None or value < below)
    if not ok:
        bounds = [
            f"{op} {bound}"
            for op, bound in ((">=", minimum), (">", above), ("<=", maximum), ("<", below))
            if bound is not None
        ]
        wanted = "a finite number" + (f" {' and '.join(bounds)}" if bounds else "")
        raise ConfigError(f"{key}={value!r} is not valid; it must be {wanted}")


def check_fraction(key: str, value) -> None:
    """A probability of dropping or applying: in [0, 1)."""
    check_number(key, value, minimum=0, below=1)


# wandb-workspaces re-parses a Report's or workspace's run filters from a string: it rewrites
# `=`, `<`, `>` and `\` inside a value and fails on `'`; and it refuses a workspace name with a
# symbol (Unicode categories Sm, Sc, Sk, So: `+`, `±`, `|`, `~`, `^`, `$`) or an emoji.
WANDB_FILTER_BREAKERS = "'\\=<>"
WANDB_NAME_CATEGORIES = ("Sm", "Sc", "Sk", "So", "Cs")


def check_wandb_name(key: str, value: str) -> None:
    """``value`` becomes part of a W&B group that the sweep's W&B Report filters on and its
    workspace is named after: no character that wandb-workspaces rewrites or refuses."""
    for char in str(value):
        if char in WANDB_FILTER_BREAKERS or unicodedata.category(char) in WANDB_NAME_CATEGORIES:
            raise ConfigError(
                f"{key}={value!r} contains {char!r}, which the W&B Report and workspace of the "
                "sweep cannot filter on or be named with; use letters, digits, '-', '_' or '.'"
            )


# --- a library's rejection of a setting --------------------------------------------------------


def one_line(err: BaseException, typed: bool = True) -> str:
    """An exception in one line: ``ValueError: <first line of its message>`` (without the type
    unless ``typed``). An error a spawned process re-raised here (``ddp_spawn``) carries that
    process's traceback as its message: its last line, the original error, is taken."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    line = lines[-1] if lines and lines[0].startswith("-- Process") else lines[0] if lines else ""
    if not typed:
        return line or type(err).__name__
    return f"{type(err).__name__}: {line}"


def setting_error(
    err: BaseException, group: str, target: str, overrides: list[str], explained_only: bool = False
) -> ConfigError | None:
    """``err`` (raised by ``target`` for the settings of config group ``group``) as one line.

    The key named is the override of ``group`` that the message mentions (by key or value), or
    the only override of ``group``; a failure no override explains names the group, or with
    ``explained_only`` is not a setting's fault (None).
    """
    message = one_line(err, typed=False)
    if isinstance(err, TypeError) and "unexpected keyword argument" in message:
        bad = message.split("argument")[-1].strip(" '")
        return ConfigError(f"{group}.{bad} does not apply to {target}; remove it")
    own = [
        o for o in overrides if override_key(o) == group or override_key(o).startswith(group + ".")
    ]

    def mentioned(override: str) -> bool:
        name = override_key(override).rsplit(".", 1)[-1]
        value = override_value(override)
        return bool(re.search(rf"\b{re.escape(name)}\b", message, re.IGNORECASE)) or bool(
            value and re.search(rf"(?<![\w.]){re.escape(value)}(?![\w.])", message)
        )

    named = [o for o in own if mentioned(o)]
    if explained_only and not named:
        return None
    named = named or own
    if named:
        keys = ", ".join(override_key(o) for o in named)
        return ConfigError(
            f"{', '.join(o.lstrip('+~') for o in named)} is not valid: {target} says "
            f'"{message}"; change {keys}'
        )
    return ConfigError(
        f'the {group} settings are not valid: {target} says "{message}"; check {group}.* '
        "(python -m cnn_ablations.train --cfg job shows them)"
    )


@contextmanager
def rejected_settings(
    group: str,
    target: str,
    overrides: list[str],
    kinds: tuple = (ValueError, TypeError),
    explained_only: tuple = (),
) -> Iterator[None]:
    """Turn a library's error inside the block into a one-line ``ConfigError``: ``kinds``
    always, ``explained_only`` kinds when the message names one of the group's overrides."""
    try:
        yield
    except ConfigError:
        raise
    except kinds + explained_only as err:
        explained = not isinstance(err, kinds)
        translated = setting_error(err, group, target, overrides, explained_only=explained)
        if translated is None:
            raise
        raise translated from err


# --- the disk ------------------------------------------------------------------------------------


def disk_full(err: BaseException, directory: Path) -> str | None:
    """One line for a full disk (or quota) while writing under ``directory``, else None."""
    if not (isinstance(err, OSError) and err.errno in DISK_FULL):
        return None
    inside = err.filename and Path(err.filename).is_relative_to(directory)
    where = f" writing {err.filename}" if inside else ""
    return (
        f"no space left on the device of {directory}{where}; free space there (or set "
        "paths.output_root to another disk), then continue with resume=true"
    )
