"""The examples run as a user runs them."""
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_runs_offline_and_draws_a_chart(tmp_path):
    png = tmp_path / "chart.png"
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py"),
                          str(tmp_path / "lake"), str(png)], capture_output=True, text=True,
                         timeout=600, env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin",
                                           "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "ok;" in out.stdout and "outage" in out.stdout
    img = mpimg.imread(png)
    assert img.shape[0] > 300 and img.shape[1] > 600 and img[..., :3].std() > 0.05   # not blank
