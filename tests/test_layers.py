"""The package's layers, its core apart from its harness and the absence of import cycles, as
pyproject.toml's import-linter contracts and docs/development.md state them."""

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept():
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint), "--config", str(REPO / "pyproject.toml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_one_module_opens_each_record_file():
    # results.json is opened by record.py, multirun.yaml by sweepdir.py, and no private hook
    # into Hydra or CPython is on the run path
    src = REPO / "src" / "cnn_ablations"
    texts = {p.relative_to(src).as_posix(): p.read_text() for p in src.rglob("*.py")}
    assert [name for name, text in texts.items() if '"results.json"' in text] == ["record.py"]
    assert [name for name, text in texts.items() if '"multirun.yaml"' in text] == ["sweepdir.py"]
    for private in ("hydra._internal", "threading._shutdown", "atexit._run_exitfuncs"):
        assert not [name for name, text in texts.items() if private in text], private
    assert max(len(text.splitlines()) for text in texts.values()) <= 350


def doc_lists() -> dict[str, set[str]]:
    """docs/development.md's lists of the package's files, by heading (``### The core``, ...)."""
    lists, heading = {}, None
    for line in (REPO / "docs" / "development.md").read_text().splitlines():
        if line.startswith("### "):
            heading = line[4:]
            lists[heading] = set()
        elif line.startswith("## "):
            heading = None
        elif heading and line.startswith("- `"):
            lists[heading] |= set(re.findall(r"`([\w/]+\.py)`", line.split(":")[0]))
    return lists


def test_the_development_doc_lists_what_a_run_imports_and_every_module_once(tmp_path):
    lists = doc_lists()
    core, shared = lists["The core"], lists["Shared by both"]
    run_path = lists["The harness, on every run's path"]
    rest = lists["The harness, for sweeps, reports and W&B"]
    src = REPO / "src" / "cnn_ablations"
    files = sorted(p.relative_to(src).as_posix() for p in src.rglob("*.py"))
    listed = [name for group in (core, shared, run_path, rest) for name in sorted(group)]
    assert sorted(listed) == files  # each module in exactly one list
    # a one-epoch job, in a process of its own: the package's modules it imported
    driver = (
        "import sys; from cnn_ablations import train\n"
        "try:\n    train.main()\nexcept SystemExit as end:\n    assert not end.code, end.code\n"
        "print('MODULES', *(m for m in sys.modules if m.startswith('cnn_ablations')))"
    )
    limits = ["trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]
    args = ["trainer.max_epochs=1", *limits, "logger=csv", f"paths.output_root={tmp_path}"]
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.argv = ['train', *{args!r}]\n{driver}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    imported = set()
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("MODULES ")]
    for module in line.split()[1:]:
        path = module.removeprefix("cnn_ablations").strip(".").replace(".", "/")
        imported.add(f"{path}/__init__.py".lstrip("/") if (src / path).is_dir() else f"{path}.py")
    assert imported <= core | shared | run_path, imported - (core | shared | run_path)
    assert shared | run_path <= imported, (shared | run_path) - imported
    assert {"build.py", "module.py", "models/lenet5.py", "data/datamodule.py"} <= imported
