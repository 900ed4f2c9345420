import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not torch.distributed.is_available() or shutil.which("torchrun") is None
                    and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="torch.distributed / torchrun not available")
def test_watch_under_ddp_reports_each_problem_once_with_the_rank():
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", str(ROOT / "tests/health/ddp_worker.py")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    warnings = [line for line in lines if line.startswith("WARNING")]
    dead = [line for line in warnings if "dead-relu" in line]
    assert len(dead) == 1 and "[rank 0]" in dead[0], result.stdout + result.stderr[-2000:]
    assert len(warnings) == len(set(warnings))
    reports = sorted(line for line in lines if line.startswith("REPORT"))
    assert [r.split()[1:3] for r in reports] == [["rank=0", "collectives=0"],
                                                 ["rank=1", "collectives=0"]], result.stdout
    assert all("dead-relu" in r and "'0.weight'" in r for r in reports)   # no 'module.' prefix
