"""How a run ends, as the harness reports it: :class:`RunEnded` (the exit code and the stderr
line of a job or sweep that did not end ok), :func:`exit_code`, and Hydra's own errors before any
job runs as one line (:func:`describe_hydra_error`)."""

import re

from cnn_ablations.errors import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    ConfigError,
    one_line,
)
from cnn_ablations.overrides import override_key, override_value
from cnn_ablations.signals import Stopped, interrupt_of


class RunEnded(SystemExit):
    """A run or sweep that did not end ok, once recorded: the exit ``code`` and the ``line`` for
    stderr (None: its log said it all). Raised from the error (its ``__cause__``) by the task
    wrapper and the sweep callbacks; the console entry prints the line. A ``SystemExit``, so it
    passes Hydra's handlers, which catch ``Exception`` (per job, and around callbacks)."""

    def __init__(self, code: int, line: str | None):
        super().__init__(code)
        self.line = line

    def __reduce__(self):  # a launcher's worker process sends it back to the sweep pickled
        return type(self), (self.code, self.line)


def exit_code(err: BaseException) -> int:
    """The exit code for a job that ended with ``err``: 128 + the signal for an interruption
    (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), as a shell reports a process the signal ended."""
    stop = interrupt_of(err)
    if stop is not None:
        return 128 + stop.signum if isinstance(stop, Stopped) else EXIT_INTERRUPTED
    return EXIT_CONFIG if isinstance(err, ConfigError) else EXIT_FAILED


# --- errors outside a job: Hydra's composition ----------------------------------------------


def describe_hydra_error(err: BaseException) -> str:
    """One line for an error Hydra raises before any job runs (override syntax, a missing
    config option or key, a resolver's ``ConfigError``)."""
    from hydra.errors import (
        ConfigCompositionException,
        MissingConfigException,
        OverrideParseException,
    )

    cause: BaseException | None = err
    while cause is not None:  # a resolver's ConfigError arrives wrapped by OmegaConf and Hydra
        if isinstance(cause, ConfigError):
            return str(cause)
        cause = cause.__cause__ or cause.__context__
    if isinstance(err, OverrideParseException):
        return (
            f"cannot parse the override {err.override!r}: {one_line(err, typed=False)}; quote "
            "values with special characters (see Hydra's override grammar)"
        )
    if isinstance(err, MissingConfigException) and err.options:
        group, _, option = str(err.missing_cfg_file).rpartition("/")
        valid = ", ".join(err.options)
        return f"{group}={option} is not a config option; choose one of: {valid}"
    primary = re.search(r"Cannot find primary config '([^']*)'", str(err))
    if isinstance(err, MissingConfigException) and primary:
        return (
            f"--config-name {primary.group(1)}: no such config; --config-name names a file of "
            "conf/ (train) or, with --config-path <run>/.hydra, a run's saved config (config)"
        )
    from omegaconf.errors import InterpolationKeyError

    if isinstance(err, InterpolationKeyError):
        missing = re.search(r"key '([^']+)'", str(err))
        where = f" in {err.full_key}" if err.full_key else ""
        return (
            f"${{{missing.group(1) if missing else '?'}}}{where} refers to a key this config "
            "does not have (a typo, or a group removed with ~); --cfg job shows the keys"
        )
    if isinstance(err, ConfigCompositionException) and "not in struct" in str(err.__cause__):
        key = re.search(r"override '([^']+)'", str(err))
        key = key.group(1) if key else "?"
        options = options_defining(key)
        if options:
            return (
                f"{key} is a key of {' or '.join(options)}, not of this config; add "
                f"{options[0]} to the command line"
            )
        return (
            f"{key} is not a config key; check its spelling (--cfg job lists the keys), "
            f"or add a new key with +{key}=..."
        )
    if isinstance(err, ConfigCompositionException):
        described = _composition_error(err)
        if described:
            return described
    return one_line(err)


def _composition_error(err: BaseException) -> str | None:
    """One line for a list without -m, a key added with + that exists, a value of the wrong
    type, or a sweep over Hydra's own settings."""
    from omegaconf.errors import ValidationError

    cause = err.__cause__
    override = re.search(r"override (\S+)", str(err))
    ambiguous = re.search(r"Ambiguous value for argument '(.+)'", str(err))
    if ambiguous:
        return (
            f"{ambiguous.group(1)} lists several values: add -m (--multirun) to run one job per "
            "value, or give one value"
        )
    appended = re.search(r"An item is already at '(.+)'", str(err))
    if appended:
        return (
            f"+{appended.group(1)} adds a key the config already has; set it without the +: "
            f"{appended.group(1)}=..."
        )
    if isinstance(cause, ValidationError) and cause.full_key:
        given = override.group(1) if override else cause.full_key
        shown = "--cfg hydra" if cause.full_key.startswith("hydra.") else "--cfg job"
        return (
            f"{given} is not valid: {cause.msg.splitlines()[0]}; give {cause.full_key} a value "
            f"of that type (python -m cnn_ablations.train {shown} shows its value)"
        )
    sweep = re.search(r"Sweeping over Hydra's configuration is not supported : '(.+)'", str(err))
    if sweep:
        spec = sweep.group(1)
        key = override_key(spec)
        param = key.removeprefix("hydra.sweeper.params.")
        if param != key:
            return (
                f"{spec}: the command line sweeps a key itself; write {param}="
                f"{override_value(spec)} (with -m) instead"
            )
        return f"{spec}: Hydra's own settings (hydra.*) take one value; sweep a key of the config"
    return None


def options_defining(key: str) -> list[str]:
    """The config-group options of conf/ that define ``key`` (``group=option``): where a key
    that this config lacks comes from (``callbacks.early_stopping.patience``: budget=converged)."""
    from omegaconf import OmegaConf

    from cnn_ablations import CONF_DIR

    options, presets, absent = [], [], object()  # a group's own options first, then presets
    for path in sorted(CONF_DIR.glob("*/*.yaml")):
        group, text = path.parent.name, path.read_text()
        preset = "@package _global_" in text
        inner = key if preset else key.removeprefix(f"{group}.")
        if inner == key and not preset:
            continue  # the key is not under this group's package
        node = OmegaConf.create(text) if text.strip() else OmegaConf.create()
        value = OmegaConf.select(node, inner, default=absent, throw_on_resolution_failure=False)
        if value is not absent:
            (presets if preset else options).append(f"{group}={path.stem}")
    return options + presets
