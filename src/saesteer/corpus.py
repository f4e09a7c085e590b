"""The text corpus: documents in, packed token chunks out, tokenized once per model."""

from __future__ import annotations

import glob
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from saesteer.artifacts import read_artifact
from saesteer.errors import ConfigError, ModelError
from saesteer.text_sources import group_paragraphs, text_source


def pack_documents(
    documents: list[list[int]], context_size: int, bos_id: int, sep_id: int | None
) -> np.ndarray:
    """Concatenate documents (separated by `sep_id`) and cut the stream into rows of
    `context_size` tokens, each starting with BOS; the ragged tail is dropped."""
    stream: list[int] = []
    for doc in documents:
        stream.extend(doc)
        if sep_id is not None:
            stream.append(sep_id)
    body = context_size - 1
    n = len(stream) // body
    if n == 0:
        raise ConfigError(
            f"corpus.context_size: {context_size} tokens per chunk, but the corpus holds "
            f"{len(stream)} tokens in all ({len(documents)} documents): lower it, or add "
            "text (corpus.sources, corpus.files)"
        )
    rows = np.asarray(stream[: n * body], dtype=np.int64).reshape(n, body)
    return np.concatenate([np.full((n, 1), bos_id, dtype=np.int64), rows], axis=1)


CHUNKS_SCHEMA = {"chunk": pl.Int64, "split": pl.Utf8, "input_ids": pl.List(pl.Int64)}
DOCUMENTS_SCHEMA = {"doc_id": pl.Int64, "source": pl.Utf8, "text": pl.Utf8}


def read_text_file(path: str | Path, limit: int | None = None) -> str:
    """A corpus file as text (its first `limit` bytes, when given); a file that is not
    UTF-8 text (a binary file, a NUL byte) is a ConfigError naming it: read with
    replacement characters, it would train and mine on noise."""
    with Path(path).open("rb") as f:
        data = f.read() if limit is None else f.read(limit)
    where = f"corpus.files: {path} is not UTF-8 text"
    nul = data.find(b"\0")
    if nul >= 0:
        raise ConfigError(f"{where} (a NUL byte at {nul}: a binary file?)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        if limit is not None and len(data) == limit and e.start >= len(data) - 3:
            return data[: e.start].decode("utf-8")  # the prefix cut a character in two
        raise ConfigError(f"{where} (byte {e.start}: {e.reason})") from None


def build_documents(
    sources: list[str],
    files: list[str],
    seed: int = 0,
    min_chars: int = 200,
    downloads: Path = Path("resources/downloads"),
) -> pl.DataFrame:
    """Extract, clean, deduplicate and shuffle (seeded) the documents of every source."""
    docs: dict[str, tuple[str, str]] = {}
    for name in sources:
        for text in text_source(name).documents(downloads):
            _add(docs, name, text, min_chars)
    for pattern in files:
        matches = sorted(glob.glob(pattern, recursive=True))
        if not matches:
            raise ConfigError(f"corpus.files: no file matches {pattern!r}")
        for path in matches:
            for text in _paragraph_blocks(read_text_file(path)):
                _add(docs, f"file:{path}", text, min_chars)
    if not docs:
        raise ConfigError("corpus: no documents (check corpus.sources and corpus.files)")
    order = np.random.default_rng(seed).permutation(len(docs))
    items = list(docs.values())
    return pl.DataFrame(
        {
            "doc_id": list(range(len(items))),
            "source": [items[i][0] for i in order],
            "text": [items[i][1] for i in order],
        },
        schema=DOCUMENTS_SCHEMA,
    )


def _add(docs: dict, source: str, text: str, min_chars: int) -> None:
    text = re.sub(r"[ \t]+", " ", text).strip()
    if len(text) < min_chars:
        return
    key = hashlib.sha1(text.lower().encode()).hexdigest()
    docs.setdefault(key, (source, text))


def _paragraph_blocks(text: str) -> Iterator[str]:
    """Blank-line separated paragraphs of a plain-text file, grouped into documents."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    return group_paragraphs([p for p in paragraphs if p])


def tokenize_documents(
    documents: pl.DataFrame,
    tokenizer,
    context_size: int,
    heldout_fraction: float,
    max_tokens: int | None = None,
) -> pl.DataFrame:
    """Pack the documents into BOS-led chunks; the last `heldout_fraction` is held out."""
    bos = tokenizer.bos_token_id
    if bos is None:
        raise ModelError("the model's tokenizer has no BOS token; chunks need one to start with")
    ids = tokenizer(documents["text"].to_list(), add_special_tokens=False)["input_ids"]
    chunks = pack_documents(ids, context_size, bos, tokenizer.eos_token_id)
    if max_tokens is not None:
        chunks = chunks[: max(2, max_tokens // context_size)]
    n_heldout = max(1, round(len(chunks) * heldout_fraction))
    split = ["train"] * (len(chunks) - n_heldout) + ["heldout"] * n_heldout
    return pl.DataFrame(
        {"chunk": range(len(chunks)), "split": split, "input_ids": chunks.tolist()},
        schema=CHUNKS_SCHEMA,
    )


def read_chunks(path: str | Path, split: str) -> np.ndarray:
    frame = read_artifact(path).filter(pl.col("split") == split)
    return np.asarray(frame["input_ids"].to_list(), dtype=np.int64)
