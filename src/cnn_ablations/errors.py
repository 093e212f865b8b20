"""User-facing errors: one line that names the key, the bad value and what is valid."""

from collections.abc import Iterable


class ConfigError(ValueError):
    """A bad setting or missing input the user can fix; printed as one line, no traceback."""


def check_choice(key: str, value, choices: Iterable) -> None:
    """Raise `ConfigError` unless `value` is one of `choices`."""
    choices = list(choices)
    if value not in choices:
        valid = ", ".join(str(c) for c in choices)
        raise ConfigError(f"{key}={value!r} is not valid; choose one of: {valid}")


class JobFailed(RuntimeError):
    """Training itself went wrong (e.g. a non-finite loss): the job reports one line and fails;
    in a sweep the other jobs go on."""
