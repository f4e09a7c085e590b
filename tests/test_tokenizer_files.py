"""saesteer.tokenizer_files: tokenizers loaded from their files as transformers loads them."""

import pytest

from saesteer.models import load_model, load_tokenizer
from saesteer.tokenizer_files import _added_tokens_kwargs, _leading_member, auto_tokenizer

TOKENIZER_TEXTS = [
    "w1 w2 w3",
    "<s> w4 </s> <unk> w5<s>w6",
    "  w7\n\n\tw8  \r\n ",
    "naïve café — 日本語 😀 ﬁ",
    "<start_of_turn>user\nhello<end_of_turn>",
    "w9 w10w11 <extra> w12",
    "",
]
CHAT = [
    {"role": "user", "content": "w1 naïve 😀"},
    {"role": "assistant", "content": "  w2\n"},
    {"role": "user", "content": "<s> w3"},
]


def _tokenizer_facts(tokenizer) -> dict:
    """All a run reads from a tokenizer: its class, backend, special and added tokens, ids,
    decodes, padding and chat template."""
    facts = {
        "class": type(tokenizer),
        "backend": tokenizer.backend_tokenizer.to_str(),
        "len": len(tokenizer),
        "special_ids": [getattr(tokenizer, f"{n}_token_id") for n in ("bos", "eos", "pad", "unk")],
        "special_tokens": str(tokenizer.special_tokens_map),
        "all_special_ids": tokenizer.all_special_ids,
        "added": {i: repr(token) for i, token in tokenizer.added_tokens_decoder.items()},
        "sides": (tokenizer.padding_side, tokenizer.truncation_side, tokenizer.model_max_length),
        "chat_template": tokenizer.chat_template,
    }
    for text in TOKENIZER_TEXTS:
        ids = tokenizer(text)["input_ids"]
        facts[text] = (
            ids,
            tokenizer(text, add_special_tokens=False)["input_ids"],
            tokenizer.tokenize(text),
            tokenizer.decode(ids),
            tokenizer.decode(ids, skip_special_tokens=True),
        )
    if tokenizer.pad_token is not None:
        facts["batch"] = dict(tokenizer(TOKENIZER_TEXTS, padding=True))
    facts["each_id"] = tokenizer.batch_decode([[i] for i in range(0, len(tokenizer), 97)])
    if tokenizer.chat_template:
        facts["chat"] = [
            tokenizer.apply_chat_template(CHAT[:n], tokenize=tokenize, add_generation_prompt=True)
            for n in (1, 3)
            for tokenize in (False, True)
        ]
    return facts


def _assert_loads_as_transformers_does(path):
    """`auto_tokenizer` takes its shortcut here and ends where transformers' own
    `AutoTokenizer.from_pretrained` does."""
    from pathlib import Path

    from transformers import AutoTokenizer

    assert _added_tokens_kwargs(Path(path))  # else this compares the plain path with itself
    expected = _tokenizer_facts(AutoTokenizer.from_pretrained(path))
    assert _tokenizer_facts(auto_tokenizer(path)) == expected


def _added_tokens_dir(tmp_path):
    """The tiny word tokenizer with added tokens of every kind: stripping, single-word,
    normalized, special and not, and an extra special token."""
    from tokenizers import AddedToken

    from tests.helpers import word_tokenizer

    tokenizer = word_tokenizer()
    tokenizer.add_tokens([AddedToken("w10w11", single_word=True, lstrip=True, normalized=True)])
    tokenizer.add_tokens([AddedToken("<start_of_turn>", rstrip=True), "<end_of_turn>"])
    tokenizer.add_special_tokens({"pad_token": "<pad>", "extra_special_tokens": ["<extra>"]})
    tokenizer.save_pretrained(tmp_path)
    assert not (tmp_path / "special_tokens_map.json").exists()
    return tmp_path


def test_tokenizers_load_as_transformers_loads_them(
    tmp_path, tiny_model_dir, tiny_gemma2_dir, tiny_gemma3_dir
):
    for path in (tiny_model_dir, tiny_gemma2_dir, tiny_gemma3_dir, _added_tokens_dir(tmp_path)):
        _assert_loads_as_transformers_does(path)


def test_gemmas_tokenizer_loads_as_transformers_loads_it(gemma3_tokenizer):
    """Gemma-3's real tokenizer: a class that rebuilds its backend, 262k pieces with byte
    fallback, and 6k added tokens that take more than the first MiB of tokenizer.json."""
    from pathlib import Path

    from transformers import AutoTokenizer

    path = Path(gemma3_tokenizer.name_or_path)
    head = _leading_member(path / "tokenizer.json", "added_tokens")
    assert len(head) == len(gemma3_tokenizer.added_tokens_decoder) > 6000
    assert type(gemma3_tokenizer) is type(AutoTokenizer.from_pretrained(path))
    _assert_loads_as_transformers_does(path)


def test_load_model_and_load_tokenizer_return_transformers_tokenizer(tmp_path, tiny_gemma3_dir):
    import json

    from transformers import AutoTokenizer

    expected = _tokenizer_facts(AutoTokenizer.from_pretrained(tiny_gemma3_dir))
    model_json = tmp_path / "model.json"
    model_json.write_text(json.dumps({"path": str(tiny_gemma3_dir)}))
    assert _tokenizer_facts(load_tokenizer(model_json)) == expected
    assert _tokenizer_facts(load_model(tiny_gemma3_dir, device="cpu")[1]) == expected


@pytest.mark.parametrize(
    "extra",
    [
        {"special_tokens_map.json": "{}"},
        {"added_tokens.json": "{}"},
        {"tokenizer_config.json": '{"added_tokens_decoder": {}}'},
    ],
)
def test_tokenizers_with_tokens_elsewhere_take_the_plain_path(tmp_path, extra):
    path = _added_tokens_dir(tmp_path)
    assert _added_tokens_kwargs(path)
    for name, text in extra.items():
        (path / name).write_text(text)
    assert _added_tokens_kwargs(path) == {}


def test_leading_member_reads_a_member_wherever_it_lies(tmp_path):
    """Any member order and spacing, a member past the first MiB and a cut inside a
    multi-byte character; None for a missing member or a file that is not JSON."""
    import json

    tokens = [{"id": i, "content": f'<t{i}> é😀 "q" \\', "special": i % 2 == 0} for i in range(3)]
    big = {"vocab": {f"é{i}": i for i in range(200_000)}, "n": 12345}
    layouts = {
        "compact": {"version": "1.0", "added_tokens": tokens, "model": big},
        "model_first": {"model": big, "truncation": None, "added_tokens": tokens},
    }
    for name, value in layouts.items():
        for indent in (None, 2):
            file = tmp_path / f"{name}-{indent}.json"
            file.write_text(json.dumps(value, indent=indent, ensure_ascii=False) + "\n ")
            assert _leading_member(file, "added_tokens") == tokens
            assert _leading_member(file, "nothing") is None
    multibyte = tmp_path / "multibyte.json"
    multibyte.write_bytes(b'{"a": "' + "é".encode() * (1 << 19) + b'", "added_tokens": [1]}')
    assert _leading_member(multibyte, "added_tokens") == [1]
    broken = ['{"added_tokens" [1]}', '{"a": 1 "added_tokens": [1]}', '["added_tokens"]', "", "{"]
    for text in broken + ['{"model": {"a": 1}']:
        (tmp_path / "broken.json").write_text(text)
        assert _leading_member(tmp_path / "broken.json", "added_tokens") is None
