"""A non-editable install carries everything a run needs (the schema ships inside the
package): `pip install .`, then a tiny workflow run from another folder."""

import os
import subprocess
import sys

import pytest
import yaml

from tests.helpers import REPO


@pytest.mark.workflow
def test_a_non_editable_install_runs_a_tiny_workflow_from_another_folder(tmp_path, tiny_config):
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
        + ["--no-build-isolation", "--target", str(site), str(REPO)],
        check=True,
    )
    bin_dir = site / "bin"
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "PATH": os.pathsep.join(
            [str(bin_dir), os.path.dirname(sys.executable), os.environ["PATH"]]
        ),
    }
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import saesteer.config as c; print(c.__file__, c.SCHEMA.is_file())",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.split()
    assert where == [str(site / "saesteer" / "config.py"), "True"]  # the copy, not src/
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "run.yaml").write_text(yaml.safe_dump(tiny_config))
    target = "results/tiny/layers/1/output_scores.parquet"
    result = subprocess.run(
        ["snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "--configfile", "run.yaml"]
        + ["--cores", "2", target],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (elsewhere / target).is_file()
    log = (elsewhere / "results/tiny/logs/output_scores/1.log").read_text()
    assert "saesteer.stages.output_scores" in log
