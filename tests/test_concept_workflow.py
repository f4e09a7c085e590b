"""The concepts part of the workflow on the tiny model: the proxy judge offline, and the
chat-completions judge against a loopback fake server."""

import copy
import json
import shutil

import polars as pl
import pytest

from saesteer.cli import main
from tests.fake_chat import FakeChat, Reply
from tests.helpers import TABLE, concept_config, planned_jobs, run_snakemake


def _ratings_log(workdir) -> str:
    return (workdir / "results/tiny/logs/concept_ratings/2.log").read_text()


@pytest.mark.workflow
def test_concepts_with_the_proxy_judge(tmp_path, concept_run):
    workdir, config = concept_run
    shutil.copytree(workdir, tmp_path, symlinks=True, dirs_exist_ok=True)
    out = tmp_path / "results/tiny"
    concepts = pl.read_parquet(out / "layers/2/concepts.parquet")
    assert concepts["feature"].to_list() == [0, 3, 7]  # the first 3 of layer 2's features
    assert set(concepts["description_source"]) == {"derived"}
    answers = pl.read_parquet(out / "layers/2/concept_generations.parquet")
    assert answers.height == 3 * (2 * 2 * 4) + 3 * 2
    ratings = pl.read_parquet(out / "layers/2/concept_ratings.parquet")
    assert ratings["judge_proxy"].all() and ratings["judge"][0].startswith("proxy:")
    for column in ("concept_rating", "instruction_rating", "fluency_rating", "harmonic"):
        assert ratings[column].is_between(0, 2).all()
    table = pl.read_parquet(out / "concepts/concept_table.parquet")
    assert table["row"].to_list() == [
        "Prompting",
        "SAE, output score >= 0",
        "SAE, no filter",
        "DiffMean",
    ]
    assert table["n_concepts"].to_list() == [3, 3, 3, 3]
    scores = pl.read_parquet(out / "concepts/concept_scores.parquet")
    chosen = scores.filter(pl.col("method") == "sae")  # one factor per concept
    assert chosen["feature"].to_list() == [0, 3, 7] and chosen["factor"].is_in([1.0, 4.0]).all()
    assert "Proxy judge" in (tmp_path / TABLE).read_text()
    assert "0 ratings from the cache" in _ratings_log(tmp_path)

    # The report holds the table under its own category.
    result = run_snakemake(tmp_path, config, TABLE, "--report", str(tmp_path / "report.html"))
    assert result.returncode == 0, result.stderr[-3000:]
    report = (tmp_path / "report.html").read_text()
    assert "Concept steering" in report and "concept_table.html" in report

    # A rerun of the judge reads every rating from the cache.
    result = run_snakemake(tmp_path, config, TABLE, "--forcerun", "concept_ratings")
    assert result.returncode == 0, result.stderr[-3000:]
    assert ", 0 new" in _ratings_log(tmp_path)
    assert pl.read_parquet(out / "layers/2/concept_ratings.parquet").equals(ratings)

    # An edit reruns only the stages it feeds.
    for section, value, rules in [
        ("thresholds", [0.5], {"concept_table"}),
        (
            "judge",
            {"kind": "proxy", "proxy": {"concept_similarity": [0.0, 0.3]}},
            {"concept_ratings", "concept_table"},
        ),
        ("factors", [1.0, 2.0], {"concept_generations", "concept_ratings", "concept_table"}),
    ]:
        edited = copy.deepcopy(config)
        edited["concepts"][section] = value
        dry = run_snakemake(tmp_path, edited, TABLE, "-n")
        assert {rule for rule, _ in planned_jobs(dry.stdout)} == rules, section


@pytest.mark.workflow
def test_concepts_with_a_chat_judge(tmp_path, tiny_config, monkeypatch):
    with FakeChat(api_key="sk-test", answer=lambda user: "Rating: 2") as server:
        judge = {
            "kind": "chat",
            "cache_dir": str(tmp_path / "judge-cache"),
            "chat": {
                "base_url": server.url,
                "model": "judge-1",
                "api_key_env": "TEST_KEY",
                "backoff": 0,
                "requests_per_minute": 0,
            },
        }
        config = concept_config(tiny_config, **judge)
        server.script = [Reply(status=503), Reply(status=429, headers={"Retry-After": "0"})]
        result = run_snakemake(tmp_path, config, TABLE, env={"TEST_KEY": "sk-test"})
        assert result.returncode == 0, result.stderr[-3000:]
        ratings = pl.read_parquet(tmp_path / "results/tiny/layers/2/concept_ratings.parquet")
        assert not ratings["judge_proxy"].any()
        assert ratings["judge"][0].startswith(f"chat:judge-1@{server.url.split('/')[2]}:")
        assert (ratings["harmonic"] == 2.0).all()
        assert "Proxy judge" not in (tmp_path / TABLE).read_text()
        sent = len(server.requests)
        assert 0 < sent <= 3 * ratings.height + 2  # each (prompt, response) once, 2 retried

        # The judge's disk cache: a rerun sends nothing.
        forced = ("--forcerun", "concept_ratings")
        result = run_snakemake(tmp_path, config, TABLE, *forced, env={"TEST_KEY": "sk-test"})
        assert result.returncode == 0, result.stderr[-3000:]
        assert len(server.requests) == sent

        # A rejected key stops the job with the variable's name, and no artifact.
        (tmp_path / "judge-cache").rename(tmp_path / "old-cache")
        result = run_snakemake(tmp_path, config, TABLE, *forced, env={"TEST_KEY": "sk-wrong"})
        assert result.returncode != 0
        assert "$TEST_KEY" in _ratings_log(tmp_path)
        assert "sk-wrong" not in _ratings_log(tmp_path)

        # The step itself: exit status 2, and no artifact at all.
        monkeypatch.setenv("TEST_KEY", "sk-wrong")
        layer = tmp_path / "results/tiny/layers/2"
        out = tmp_path / "ratings.parquet"
        status = main(
            [
                "concept-ratings",
                "--model",
                str(tmp_path / "results/tiny/model.json"),
                "--generations",
                str(layer / "concept_generations.parquet"),
                "--concepts",
                str(layer / "concepts.parquet"),
                "--settings",
                json.dumps({"judge": judge}),
                "--out",
                str(out),
            ]
        )
        assert status == 2 and not out.exists() and not list(tmp_path.glob(".ratings*"))


@pytest.mark.workflow
@pytest.mark.parametrize(
    "concepts, message",
    [
        ({"layers": [5]}, "concepts.layers: layer 5 is not in layers"),
        ({"layers": [2], "n_select": 10}, "concepts.n_select"),
        ({"layers": [2], "instructions": ["a", "b"]}, "concepts.instructions: 2 instructions"),
        ({"layers": [2], "judge": {"kind": "gpt"}}, "concepts.judge.kind"),
        (
            {"layers": [2], "judge": {"kind": "chat", "chat": {"rubrics": "no-rubrics.yaml"}}},
            "concepts.judge.chat.rubrics: no-rubrics.yaml: no such file",
        ),
    ],
)
def test_bad_concept_settings_fail_early(tmp_path, tiny_config, concepts, message):
    tiny_config["concepts"] = concepts
    result = run_snakemake(tmp_path, tiny_config, "-n")
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def small_release(data, ratings: dict[str, dict]) -> None:
    """The paper's release format for layer 2's concepts 0, 3 and 7 of the tiny run."""
    keys = ["2_0", "2_3", "2_7"]
    files = {
        "generated_texts/gemma_9b_it/m_generations_cache_0_4.json": {
            k: [f"w{j} w{j + 1}. w9 w9" for j in range(10)] for k in keys
        },
        "axbench_instructions/m_instructions_cache.json": {
            k: [f"w{j} w{j + 1}." for j in range(10)] for k in keys
        },
        "steering_factors/m_best_steering_factors.json": dict.fromkeys(keys, 0.4),
    }
    for aspect, by_key in ratings.items():
        files[f"axbench_llm_scores/m_llm_{aspect}_score_cache.json"] = {
            k: {"scores": scores, "mean_score": None, "best_steering_factor": 0.4}
            for k, scores in by_key.items()
        }
    for rel, content in files.items():
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_text(json.dumps(content))


@pytest.mark.workflow
def test_table_1_from_the_released_answers_and_ratings(tmp_path, tiny_config):
    """concepts.source released: no answers are generated or judged; the table's SAE rows
    are the released ratings, filtered by this run's output scores."""
    data = tmp_path / "paper/data"
    ratings = {
        "concept": {"2_0": [2, 2, 2, 2, 2], "2_3": [1, 1, 1, 1, 1], "2_7": [0, 2, 2, 2, 2]},
        "instruct": {"2_0": [2, 1, 2, 1, 2], "2_3": [2, 2, 2, 2, None], "2_7": [2] * 5},
        "fluency": {"2_0": [1, 1, 1, 1, 1], "2_3": [2, 2, 0, 2, 2], "2_7": [1] * 5},
    }
    small_release(data, ratings)
    config = concept_config(tiny_config)
    config["concepts"].update(
        source="released", released={"data_dir": str(data)}, n_select=5, thresholds=[0.0, 1.0]
    )
    result = run_snakemake(tmp_path, config, TABLE)
    assert result.returncode == 0, result.stderr[-3000:]
    ran = {rule for rule, _ in planned_jobs(result.stdout + result.stderr)}
    assert "released_concepts" in ran and not ran & {"concept_generations", "concept_ratings"}
    out = tmp_path / "results/tiny"
    lens = pl.read_parquet(out / "layers/2/output_scores.parquet")
    output_score = dict(lens.select("feature", "output_score").iter_rows())

    def hmean(*xs):
        return 0.0 if min(xs) == 0 else len(xs) / sum(1 / x for x in xs)

    expected = {0: hmean(2, 8 / 5, 1), 3: hmean(1, 2, 8 / 5), 7: hmean(8 / 5, 2, 1)}
    table = pl.read_parquet(out / "concepts/concept_table.parquet")
    assert table["row"].to_list() == [
        "SAE, output score >= 1",
        "SAE, output score >= 0",
        "SAE, no filter",
    ]
    assert table["n_concepts"].to_list() == [0, 3, 3]
    assert table["score"][2] == pytest.approx(sum(expected.values()) / 3)
    assert table["score"][0] is None
    assert not table["judge_proxy"].any() and table["judge"][0].startswith("released:")
    scores = pl.read_parquet(out / "concepts/concept_scores.parquet")
    for feature, score, factor, lens_score in scores.select(
        "feature", "score", "factor", "output_score"
    ).iter_rows():
        assert score == pytest.approx(expected[feature]) and factor == 0.4
        assert lens_score == pytest.approx(output_score[feature])
    assert "paper's own release" in (tmp_path / TABLE).read_text()

    # per_response: each answer's harmonic mean (the answer with a null rating left out)
    config["concepts"]["aggregation"] = "per_response"
    result = run_snakemake(tmp_path, config, TABLE)
    assert result.returncode == 0, result.stderr[-3000:]
    scores = pl.read_parquet(out / "concepts/concept_scores.parquet")
    per = dict(scores.select("feature", "score").iter_rows())
    assert per[0] == pytest.approx((3 * hmean(2, 2, 1) + 2 * hmean(2, 1, 1)) / 5)
    assert per[3] == pytest.approx((3 * hmean(1, 2, 2) + hmean(1, 2, 0)) / 4)
    assert per[7] == pytest.approx((hmean(0, 2, 1) + 4 * hmean(2, 2, 1)) / 5)

    # The release is checked before any job: its layers, the test split.
    for edit, message in [
        ({"layers": [1, 2]}, "the release has no concepts at layers [1] (it has [2])"),
        ({"n_select": 10}, "concepts.n_select: 10 leaves no test answers"),
    ]:
        bad = copy.deepcopy(config)
        bad["concepts"].update(edit)
        result = run_snakemake(tmp_path, bad, TABLE, "-n")
        assert result.returncode != 0 and message in result.stdout + result.stderr, message

    # A missing release is named, with where to get it.
    config["concepts"]["released"]["data_dir"] = str(tmp_path / "nowhere/data")
    result = run_snakemake(tmp_path, config, TABLE, "-n")
    assert result.returncode != 0
    assert "concepts.released.data_dir: file not found" in result.stdout + result.stderr
    assert "make paper-data" in result.stdout + result.stderr


@pytest.mark.workflow
def test_a_concept_layers_pages_read_its_descriptions_and_ratings(tmp_path, concept_run):
    """The explorer's page job of a concept layer reads its concepts and ratings (which
    `tests/explorer/test_pages.py` renders into a page); another layer's does not."""
    workdir, config = concept_run
    shutil.copytree(workdir, tmp_path, symlinks=True, dirs_exist_ok=True)
    pages = "results/tiny/explorer/layers/{}"
    result = run_snakemake(tmp_path, config, "-n", "-p", pages.format(2), pages.format(1))
    assert result.returncode == 0, result.stderr[-3000:]
    commands = [line for line in result.stdout.splitlines() if "saesteer explorer-pages" in line]
    assert len(commands) == 2
    for command in commands:
        concept_layer = "--out results/tiny/explorer/layers/2" in command
        assert ("--concepts results/tiny/layers/2/concepts.parquet" in command) == concept_layer
        assert (
            "--concept-ratings results/tiny/layers/2/concept_ratings.parquet" in command
        ) == concept_layer
