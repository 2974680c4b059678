"""The package as a user gets it: a non-editable wheel carries the configs, and --help stays light."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_install_runs_with_its_own_configs(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(REPO)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("lrn_ablate-*.whl")
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    assert (site / "lrn_ablate" / "conf" / "norm" / "lrn.yaml").is_file()
    env = {**os.environ, "PYTHONPATH": str(site), "WANDB_MODE": "offline", "XDG_CACHE_HOME": str(tmp_path)}
    where = subprocess.run([sys.executable, "-c", "import lrn_ablate.conf as c; print(c.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr
    # Every module comes from the wheel (an editable install of the checkout must not fill a gap), and the
    # wheel carries the C sources its kernels are built from.
    check = ("import shutil, sys, lrn_ablate.training.loop, lrn_ablate.report.cli; from lrn_ablate import kernels; "
             "print([n for n, m in sys.modules.items() if n.startswith('lrn_ablate') "
             f"and not (getattr(m, '__file__', None) or {str(site)!r}).startswith({str(site)!r})]); "
             "print(shutil.which('cc') is None or kernels.library() is not None)")
    origin = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert origin.stdout.split() == ["[]", "True"], origin.stdout + origin.stderr
    run = subprocess.run([sys.executable, "-m", "lrn_ablate", "train", "dataset=digits", "trainer.epochs=1",
                          "norm=lrn", "logger=none"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert len(list((tmp_path / "runs").glob("default/*/metrics.csv"))) == 1


def test_top_level_help_does_not_import_torch():
    code = "import sys; from lrn_ablate.cli import main; main(['--help']); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().endswith("False"), result.stdout + result.stderr
