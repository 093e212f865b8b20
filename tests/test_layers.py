"""The package's layers and the absence of import cycles, as pyproject.toml's import-linter
contracts state them (docs/development.md)."""

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
