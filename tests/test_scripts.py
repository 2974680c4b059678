"""The scripts under scripts/ end on bad input as the CLI does: one sentence naming the setting, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.mark.parametrize("script", ["bench_stream.py", "bench_train.py"])
def test_a_script_given_a_missing_tree_says_so_in_one_sentence(tmp_path, script):
    missing = tmp_path / "missing"
    result = subprocess.run([sys.executable, str(SCRIPTS / script), "--root", str(missing), "--out",
                             str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1  # no traceback
    assert lines[0].startswith(f"{script}: error: ") and str(missing) in lines[0]
    assert not (tmp_path / "out").exists()
