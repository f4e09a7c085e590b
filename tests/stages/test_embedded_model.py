"""Stage `embedded_model` by hand: `saesteer embedded-model` converts SmolLM2 from its
wheel into the same files the workflow's conversion made (a minute: the slow tier)."""

import pytest

from saesteer.cli import main
from saesteer.models import EmbeddedSource
from tests.helpers import REPO, assert_same_files


@pytest.mark.slow
@pytest.mark.workflow
def test_by_hand_equals_the_workflows_conversion(tmp_path):
    name = "smollm2-135m-instruct"
    converted = EmbeddedSource(name).resolve(REPO / "resources")
    out = tmp_path / name
    argv = ["embedded-model", "--name", name, "--downloads", str(REPO / "resources/downloads")]
    assert main([*argv, "--out", str(out)]) == 0
    files = [p for p in converted.iterdir() if not p.name.startswith(".")]
    assert_same_files([(p, out / p.name) for p in files])
