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


def test_the_readme_recipes_name_what_exists():
    """Every config, profile, make target and saesteer command a recipe names is here."""
    import re

    from saesteer import cli

    text = (ROOT / "README.md").read_text()
    recipes = text.split("## Recipes", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for line in recipes.splitlines() if line.startswith("    ")]
    commands = " ".join(lines)
    paths = re.findall(r"(?:config|workflow/profiles)/[\w./-]+", commands)
    assert paths and all((ROOT / p).exists() for p in paths), paths
    makefile = (ROOT / "Makefile").read_text()
    phony = makefile.split(".PHONY:", 1)[1].split("\n", 1)[0].split()
    targets = [
        t for line in lines if line.startswith("make ") for t in line.split("#")[0].split()[1:]
    ]
    assert targets and set(targets) <= set(phony), targets
    stages = re.findall(r"saesteer ([a-z-]+)", commands)
    assert stages and set(stages) <= set(cli.COMMANDS), stages


def test_no_documented_command_puts_a_target_after_configfile():
    """`--configfile` takes every following word as a config file: a target written after
    it is read as YAML and the command fails."""
    import re

    texts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    texts += sorted((ROOT / "config").glob("*"))
    bad = []
    for path in texts:
        text = path.read_text().replace("\\\n", " ").replace("\n#  ", " ")
        for match in re.finditer(r"--configfile((?:\s+#?\s*[^\s-][^\s]*)+)", text):
            words = [w for w in match.group(1).split() if w != "#"]
            if len(words) > 1 and words[1].startswith("results/"):
                bad.append(f"{path.name}: {' '.join(words[:2])}")
    assert bad == []
