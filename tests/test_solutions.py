"""Every exercise solution in notebooks/solutions/ runs and passes its own check, so solutions
cannot rot when srlib changes. Each solution is a script that ends with the check of the
notebook's check cell (an assert) and prints "check holds"."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SOLUTIONS = sorted((Path(__file__).resolve().parents[1] / "notebooks" / "solutions").glob("[0-9][0-9]_*.py"))


def test_every_notebook_with_exercises_has_solutions():
    assert SOLUTIONS, "notebooks/solutions/ holds no solutions"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_runs_and_its_check_holds(path, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", SRLIB_HEADLESS="1")
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"{path.name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert "check holds" in proc.stdout, proc.stdout[-2000:]
