"""Stage = module = rule = subcommand = rule file: the names agree, every rule passes its
stage exactly the flags the stage's run() takes, and parsing the workflow needs no torch."""

import ast
import inspect
import re
import subprocess
import sys

import pytest

from saesteer.cli import command
from saesteer.stages import STAGES
from tests.helpers import REPO

RULES = REPO / "workflow" / "rules"


def shell_of(name: str) -> str:
    """The rule's shell command, its string pieces joined."""
    text = (RULES / f"{name}.smk").read_text()
    block = text[text.index("    shell:") :]
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', block))


def test_each_stage_has_a_module_a_rule_file_and_an_include():
    files = {p.stem for p in RULES.glob("*.smk")} - {"common"}
    assert files == set(STAGES)
    snakefile = (REPO / "workflow" / "Snakefile").read_text()
    for name in STAGES:
        assert re.findall(r"^\s*rule (\w+):", (RULES / f"{name}.smk").read_text(), re.M) == [name]
        assert f'include: "rules/{name}.smk"' in snakefile
        assert (REPO / "src" / "saesteer" / "stages" / f"{name}.py").is_file()


@pytest.mark.parametrize("name", sorted(STAGES))
def test_the_rule_passes_what_run_takes(name):
    shell = shell_of(name)
    assert shell.startswith(f"saesteer {name.replace('_', '-')} ")
    flags = {f.replace("-", "_") for f in re.findall(r"(?<!\S)--([a-z][a-z-]*)", shell)}
    params = inspect.signature(command(name.replace("_", "-"))).parameters
    required = {n for n, p in params.items() if p.default is inspect.Parameter.empty}
    assert flags <= set(params), f"flags run() does not take: {flags - set(params)}"
    # The rest of the required ones come through {params.optional} (an input function
    # that leaves them out is a run that has none) or are settings (defaults: the schema).
    assert required - flags <= {"settings"}, f"not passed: {required - flags}"
    if "{params.optional}" in shell:
        optional = ast.literal_eval(
            re.search(r"optional_inputs\(([^)]*)\)", (RULES / f"{name}.smk").read_text())
            .group(0)
            .removeprefix("optional_inputs")
        )
        names = {optional} if isinstance(optional, str) else set(optional)
        assert names <= set(params) and not names & flags


def test_parsing_the_workflow_imports_no_torch():
    """The Snakefile and its rule files import only light modules (a dry run stays fast)."""
    files = [REPO / "workflow" / "Snakefile", *sorted(RULES.rglob("*.smk"))]
    sources = [path.read_text() for path in files]
    imports = [
        line
        for text in sources
        for line in re.findall(r"^from saesteer[\w.]* import .*$", text, re.M)
        + re.findall(r"^from saesteer[\w.]* import \([^)]*\)", text, re.M)
        if "(" not in line or line.endswith(")")
    ]
    heavy = ["torch", "transformers", "sae_lens"]
    code = "\n".join([*imports, "import sys", f"print([m for m in {heavy} if m in sys.modules])"])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.workflow
def test_the_workflow_is_lint_clean():
    """`snakemake --lint` finds nothing: a rule's own functions sit in rules/helpers/."""
    result = subprocess.run(
        ["snakemake", "--lint"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert "good condition" in result.stdout + result.stderr, result.stdout[-3000:]


@pytest.mark.parametrize(
    "stage",
    [
        "concept_table",
        "concept_ratings",
        "aggregate",
        "findings",
        "explorer_pages",
        "explorer_index",
    ],
)
def test_stages_that_run_no_model_import_no_torch(stage):
    """Importing torch costs a job ~1.5 s; these stages read tables (the proxy judge
    imports it when it rates, the chat judge never)."""
    code = f"import sys, saesteer.stages.{stage}; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
