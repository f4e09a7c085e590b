"""The docs quote runs only through committed snapshots (docs/runs/), rendered by
docs/render.py: a table typed or edited by hand fails here."""

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _render():
    spec = importlib.util.spec_from_file_location("render", ROOT / "docs" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_snapshot_block_equals_its_snapshot():
    result = subprocess.run(
        [sys.executable, "docs/render.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_the_readme_and_results_quote_runs_through_snapshot_blocks():
    render = _render()
    for name in ("README.md", "docs/results.md"):
        blocks = list(render.BLOCK.finditer((ROOT / name).read_text()))
        assert blocks, f"{name} has no snapshot block"
        for block in blocks:
            assert block["name"] in render.RENDERERS


def test_a_number_edited_by_hand_is_caught():
    render = _render()
    text = (ROOT / "README.md").read_text()
    block = next(render.BLOCK.finditer(text))
    body = block["body"]
    digit = next(i for i, c in enumerate(body) if c.isdigit())
    edited_body = body[:digit] + str((int(body[digit]) + 1) % 10) + body[digit + 1 :]
    edited = text[: block.start("body")] + edited_body + text[block.end("body") :]
    assert render.rendered(edited) == text != edited


def test_the_config_readme_example_is_a_valid_config():
    """config/README.md's annotated config passes the schema check as written."""
    import yaml

    from saesteer.config import resolve_config

    text = (ROOT / "config" / "README.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = yaml.safe_load(example)
    resolve_config(config)
    assert config["run"] == yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["run"]
