"""Tokenizers read faster than transformers reads them, to the same result.

A run loads its tokenizer in nearly every job, and Gemma-3's is large (a 33 MB
tokenizer.json, 262k tokens): `auto_tokenizer` parses that file once where transformers
parses it twice, and `token_texts` decodes every token in one call to the Rust decoder.
Kept apart from `saesteer.models`, which loads models and imports this module, because
both are about a tokenizer's files and its decoder, not about a model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from saesteer.errors import DataFileError

# With any of these, transformers reads added or special tokens from them too, or (from
# tekken.json) builds Mistral's own tokenizer, which takes no `added_tokens_decoder`.
_OTHER_TOKEN_FILES = ("added_tokens.json", "special_tokens_map.json", "tekken.json")
_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def auto_tokenizer(path: str | Path):
    """`AutoTokenizer.from_pretrained(path)`, parsing tokenizer.json once instead of twice.

    When tokenizer_config.json lists no `added_tokens_decoder` (transformers 5 leaves it
    out when it saves a fast tokenizer), transformers parses the whole tokenizer.json with
    Python's json just for its added tokens, then again for the model: about 1 s each for
    Gemma-3's 33 MB file. Given those same tokens, parsed from the head of the file, as
    `added_tokens_decoder`, it builds each with `AddedToken(**token)` as its own read does,
    and skips that read; all else is unchanged."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, **_added_tokens_kwargs(Path(path)))


def _added_tokens_kwargs(path: Path) -> dict:
    config_path, tokenizer_path = path / "tokenizer_config.json", path / "tokenizer.json"
    if not (config_path.is_file() and tokenizer_path.is_file()):
        return {}
    if any((path / name).exists() for name in _OTHER_TOKEN_FILES):
        return {}
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if "added_tokens_decoder" in config or "fast_tokenizer_files" in config:
        return {}  # transformers reads no added tokens from tokenizer.json
    tokens = _leading_member(tokenizer_path, "added_tokens")
    if not isinstance(tokens, list):
        return {}
    return {"added_tokens_decoder": {token.pop("id"): token for token in tokens}}


def _leading_member(json_path: Path, key: str):
    """The value of `key` in the JSON object in `json_path`, parsed from a head of the file just
    long enough to hold it (tokenizers writes `added_tokens` before the model, which is
    most of the file); None when there is no such member or the file is not JSON."""
    size = 1 << 20
    with json_path.open("rb") as f:
        while True:
            head = f.read(size)
            try:
                return _member(head.decode("utf-8"), key)
            except (ValueError, IndexError):  # cut short, or broken if it is the whole file
                if len(head) < size:
                    return None
            f.seek(0)
            size *= 4


def _member(text: str, key: str):
    decoder = json.JSONDecoder()
    pos = _JSON_SPACE.match(text).end()
    if text[pos] != "{":
        raise DataFileError("not a JSON object")
    pos = _JSON_SPACE.match(text, pos + 1).end()
    while text[pos] != "}":
        name, pos = decoder.raw_decode(text, pos)
        pos = _JSON_SPACE.match(text, pos).end()
        if text[pos] != ":":
            raise DataFileError("no colon after a key")
        value, pos = decoder.raw_decode(text, _JSON_SPACE.match(text, pos + 1).end())
        if name == key:
            return value
        pos = _JSON_SPACE.match(text, pos).end()
        if text[pos] == ",":
            pos = _JSON_SPACE.match(text, pos + 1).end()
        elif text[pos] != "}":
            raise DataFileError("no comma after a member")
    return None


def token_texts(tokenizer, token_ids) -> list[str]:
    """The decoded text of each token id on its own, as `tokenizer.decode([id])`.

    A fast tokenizer's Rust decoder takes the whole list at once: 0.6 s for Gemma-3's
    262k tokens, where `batch_decode`'s per-id Python path takes 3-6 s in every job."""
    ids = [[int(i)] for i in token_ids]
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return tokenizer.batch_decode(ids)
    texts = backend.decode_batch(ids, skip_special_tokens=False)
    if getattr(tokenizer, "clean_up_tokenization_spaces", False):
        texts = [tokenizer.clean_up_tokenization(text) for text in texts]
    return texts
