"""Hydra command-line overrides, parsed in one place: keys, values, which ones a sweep varies.

Pure functions of override strings (``+model.pool=avg``, ``seed=0,1,2``) with Hydra's own
parser; reading them from a sweep dir is :mod:`cnn_ablations.sweepdir`'s job.
"""

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ValueType
from omegaconf import DictConfig

SEED = "seed"
RESUME = "resume"
# overrides that pick how a run or sweep runs, not what it compares
NOT_A_FACTOR = ("sweep", "launcher", "hydra/launcher", "hydra", RESUME)


def override_key(override: str) -> str:
    """``+model.pool=avg`` -> ``model.pool``."""
    return override.split("=", 1)[0].lstrip("+~")


def override_value(override: str) -> str:
    """``+model.pool=avg`` -> ``avg``."""
    return override.split("=", 1)[1] if "=" in override else ""


def value_of(overrides: list[str], key: str) -> str | None:
    """The value ``overrides`` give ``key`` (None if none sets it)."""
    return next((override_value(o) for o in overrides if override_key(o) == key), None)


def factors_only(overrides: list[str]) -> list[str]:
    """``overrides`` less those that pick how a run or sweep runs (``NOT_A_FACTOR``)."""
    return [o for o in overrides if override_key(o) not in NOT_A_FACTOR]


def task_overrides(hydra_cfg: DictConfig) -> list[str]:
    """This job's command-line overrides, less those that pick how a sweep runs."""
    return factors_only([str(o) for o in hydra_cfg.overrides.task])


def sweep_levels(specs: list[str]) -> dict[str, list[str]]:
    """Key -> levels of each sweep override among ``specs`` (``a=x,y``, ``b=range(3)``), in
    the order listed; the first spec of a key wins, as the command line wins in Hydra (a
    single value there, ``a=x``, takes ``a`` out of the sweep file's grid)."""
    levels: dict[str, list[str]] = {}
    seen: set[str] = set()
    for override in OverridesParser.create().parse_overrides(specs):
        key = override.key_or_group
        if key not in seen and override.is_sweep_override() and key not in NOT_A_FACTOR:
            levels[key] = list(override.sweep_string_iterator())
        seen.add(key)
    return levels


def repeated_level(specs: list[str]) -> tuple[str, str] | None:
    """The first (key, value) that a sweep override among ``specs`` lists twice, as Hydra reads
    values (``0,0``; ``1e-3,0.001``), or None. Two such jobs would share one dir: the second
    would overwrite the first's record and checkpoints. The first spec of a key wins, as in
    :func:`sweep_levels`."""
    keys: set[str] = set()
    for override in OverridesParser.create().parse_overrides(specs):
        first = override.key_or_group not in keys
        keys.add(override.key_or_group)
        # a list of values (a,b or choice(a,b)), not glob(), range(), interval() or shuffle()
        listed = override.value_type in (ValueType.SIMPLE_CHOICE_SWEEP, ValueType.CHOICE_SWEEP)
        if not (first and listed):
            continue
        seen: list = []
        for value in override.sweep_iterator():
            if any(value == other and type(value) is type(other) for other in seen):
                return override.key_or_group, str(value)
            seen.append(value)
    return None


def with_saved(given: list[str], saved: list[str]) -> list[str]:
    """``given`` with each ``saved`` override whose key it does not set put in front: what
    ``resume=<dir>`` alone runs (the dir's own overrides)."""
    keys = {override_key(o) for o in given} | {RESUME}
    return [o for o in saved if override_key(o) not in keys] + given


def differing(current: list[str], saved: list[str]) -> list[str]:
    """The overrides that differ between two runs: in one list and not the other."""
    return [o for o in current if o not in saved] + [o for o in saved if o not in current]
