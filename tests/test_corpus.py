import numpy as np
import pytest

from saesteer.corpus import build_documents, pack_documents, read_chunks, tokenize_documents
from saesteer.errors import ConfigError


def test_pack_documents_separates_and_leads_with_bos():
    chunks = pack_documents([[5, 6, 7], [8, 9]], context_size=4, bos_id=1, sep_id=2)
    # stream 5 6 7 2 8 9 2 -> two rows of 3 body tokens, tail dropped
    assert chunks.tolist() == [[1, 5, 6, 7], [1, 2, 8, 9]]


def test_pack_documents_too_small():
    with pytest.raises(
        ValueError, match="context_size: 8 tokens per chunk, but the corpus holds 1"
    ):
        pack_documents([[5]], context_size=8, bos_id=1, sep_id=None)


def _write_text(path, paragraphs):
    path.write_text("\n\n".join(paragraphs))
    return str(path)


def test_build_documents_from_files_dedups_and_shuffles(tmp_path):
    para = "word " * 500
    files = [
        _write_text(tmp_path / "a.txt", [para + "one", para + "two"]),
        _write_text(tmp_path / "b.txt", [para + "one", "too short"]),
    ]
    docs = build_documents([], files, seed=0, min_chars=100)
    assert docs.height == 2  # duplicate and short paragraphs dropped
    assert sorted(docs["text"].str.slice(-3).to_list()) == ["one", "two"]
    assert docs["doc_id"].to_list() == [0, 1]
    again = build_documents([], files, seed=0, min_chars=100)
    assert docs.equals(again)


def test_unknown_source_and_unmatched_glob(tmp_path):
    with pytest.raises(ValueError, match="unknown source 'nope'"):
        build_documents(["nope"], [])
    with pytest.raises(ConfigError, match="no file matches"):
        build_documents([], [str(tmp_path / "*.txt")])


def test_tokenize_documents_holds_out_the_tail(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = " ".join(f"w{i % 100}" for i in range(2000))
    docs = build_documents([], [_write_text(tmp_path / "a.txt", [text])], min_chars=10)
    chunks = tokenize_documents(docs, tokenizer, context_size=16, heldout_fraction=0.1)
    assert chunks["split"].to_list().count("heldout") == round(chunks.height * 0.1)
    assert chunks["split"][-1] == "heldout"
    path = tmp_path / "chunks.parquet"
    chunks.write_parquet(path)
    train = read_chunks(path, "train")
    assert train.shape[1] == 16 and (train[:, 0] == tokenizer.bos_token_id).all()
    assert np.isin(train[:, 1:], tokenizer.convert_tokens_to_ids(["w0", "w5", "</s>"])).any()
