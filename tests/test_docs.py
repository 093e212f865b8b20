"""Every command the README and docs/ show in a ```bash block parses: training commands compose
(Hydra's `--cfg job`, each level of a sweep in turn), make targets exist and the ARGS of those
that run a CLI parse, the other CLIs accept their arguments. A command that no longer matches
the code fails here."""

import re
import shlex

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from tests.conftest import REPO

from cnn_ablations import dashboard, sync
from cnn_ablations.report.__main__ import build_parser as report_parser

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
EXTERNAL = {"wandb", "pip", "git", "source", "cd", "apt-get"}  # other programs' commands
MAKE_TARGETS = set(re.findall(r"^([a-z-]+):", (REPO / "Makefile").read_text(), re.M))
CLI_PARSERS = {
    "cnn_ablations.report": report_parser,
    "cnn_ablations.dashboard": dashboard.build_parser,
    "cnn_ablations.sync": sync.build_parser,
}

MAKE_CLIS = {  # make target -> (the CLI it runs, the arguments the Makefile adds)
    "report": ("cnn_ablations.report", []),
    "sync": ("cnn_ablations.sync", []),
    "dashboard": ("cnn_ablations.dashboard", []),
    "publish": ("cnn_ablations.dashboard", ["--publish"]),
}


def doc_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every command line in a bash block of the docs."""
    found = []
    for path in DOCS:
        blocks = re.findall(r"```bash\n(.*?)```", path.read_text(), re.S)
        for block in blocks:
            for line in block.splitlines():
                argv = shlex.split(line, comments=True)
                if argv:
                    found.append((f"{path.relative_to(REPO)}: {line.strip()[:60]}", argv))
    return found


COMMANDS = doc_commands()


def as_training_args(argv: list[str]) -> list[str] | None:
    """The ``cnn_ablations.train`` arguments a command runs, or None if it runs something else."""
    if argv[:3] == ["python", "-m", "cnn_ablations.train"]:
        return argv[3:]
    if argv[0] == "cnn-train":
        return argv[1:]
    if argv[0] == "make" and argv[1] in ("train", "sweep"):
        variables = dict(
            a.split("=", 1) for a in argv[2:] if "=" in a and a.split("=")[0].isupper()
        )
        args = shlex.split(variables.get("ARGS", ""))
        if argv[1] == "sweep":
            return ["-m", f"sweep={variables.get('SWEEP', 'lenet_ablation')}", *args]
        return args
    return None


def compositions(args: list[str]) -> list[list[str]]:
    """Single-run override lists that cover every level of every sweep override in ``args``."""
    overrides = [a for a in args if not a.startswith("-")]
    flags = [a for a in args if a.startswith("-") and a not in ("-m", "--multirun")]
    parsed = OverridesParser.create().parse_overrides(overrides)
    sweeps = {
        o.input_line: list(o.sweep_string_iterator()) for o in parsed if o.is_sweep_override()
    }
    base = [o.input_line for o in parsed if not o.is_sweep_override()]
    first = [f"{line.split('=')[0]}={levels[0]}" for line, levels in sweeps.items()]
    runs = [[*flags, *base, *first]]
    for line, levels in sweeps.items():
        key = line.split("=")[0]
        for level in levels[1:]:
            others = [o for o in first if not o.startswith(f"{key}=")]
            runs.append([*flags, *base, *others, f"{key}={level}"])
    return runs


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 30  # a broken extraction must not pass silently


@pytest.mark.parametrize("argv", [c[1] for c in COMMANDS], ids=[c[0] for c in COMMANDS])
def test_documented_command_parses(argv, cli):
    if argv[0] in EXTERNAL:
        return
    training = as_training_args(argv)
    if training is not None:
        if "--config-dir" in training:  # a job's saved config: tests/test_new_user.py runs one
            return
        for args in compositions([a for a in training if a not in ("--cfg", "job")]):
            inspect = [] if {"--help", "--info"} & set(args) else ["--cfg", "job"]
            result = cli(*args, *inspect)
            assert result.returncode == 0, f"{args}: {result.stderr}"
            assert not inspect or "model:" in result.stdout
        return
    if argv[0] == "make":
        assert argv[1] in MAKE_TARGETS, argv
        if argv[1] in MAKE_CLIS:  # the target runs a CLI: its ARGS must parse
            module, fixed = MAKE_CLIS[argv[1]]
            variables = dict(a.split("=", 1) for a in argv[2:] if "=" in a)
            CLI_PARSERS[module]().parse_args([*fixed, *shlex.split(variables.get("ARGS", ""))])
        return
    if argv[0] in ("python", "cnn-report"):
        module = "cnn_ablations.report" if argv[0] == "cnn-report" else argv[2]
        args = argv[1:] if argv[0] == "cnn-report" else argv[3:]
        assert module in CLI_PARSERS, f"no known CLI {module}"
        CLI_PARSERS[module]().parse_args(args)  # exits 2 on a bad argument
        return
    pytest.fail(f"unknown command in the docs: {argv}")
