import pytest
import torch

from saesteer.errors import ConfigError, ModelError
from saesteer.models import (
    EmbeddedSource,
    HubSource,
    LocalSource,
    decoder_layers,
    final_norm,
    load_model,
    model_info,
    model_source,
)
from tests.helpers import REPO, TINY_D_MODEL, TINY_LAYERS, TINY_VOCAB


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("embedded:smollm2-135m-instruct", EmbeddedSource),
        ("hf:google/gemma-2-2b", HubSource),
    ],
)
def test_model_source_registry(spec, kind):
    assert isinstance(model_source(spec), kind)


@pytest.mark.parametrize("spec", ["smollm2", "gguf:x", "hf:", "embedded:nope"])
def test_bad_model_source(spec):
    with pytest.raises(ConfigError, match="model.source"):
        model_source(spec)


def test_local_source_reads_layer_count(tiny_model_dir):
    source = model_source(f"local:{tiny_model_dir}")
    assert isinstance(source, LocalSource)
    assert source.n_layers() == TINY_LAYERS
    assert source.resolve() == tiny_model_dir


def test_uncached_hub_model_has_unknown_layer_count():
    assert HubSource("nobody/not-a-model").n_layers() is None


def test_architecture_accessors(tiny_model_dir):
    model, _ = load_model(tiny_model_dir, device="cpu")
    assert len(decoder_layers(model)) == TINY_LAYERS
    assert final_norm(model) is model.model.norm
    assert model_info(f"local:{tiny_model_dir}", "float32") == {
        "source": f"local:{tiny_model_dir}",
        "path": str(tiny_model_dir.resolve()),
        "dtype": "float32",
        "n_layers": TINY_LAYERS,
        "d_model": TINY_D_MODEL,
        "vocab_size": TINY_VOCAB,
    }
    assert model.get_output_embeddings().weight.shape[0] == TINY_VOCAB
    with pytest.raises(ModelError, match="unsupported architecture"):
        decoder_layers(torch.nn.Linear(2, 2))


@pytest.mark.slow
def test_embedded_model_converts_loads_and_generates():
    source = "embedded:smollm2-135m-instruct"
    info = model_info(source, "float32", REPO / "resources")
    assert {k: info[k] for k in ("n_layers", "d_model", "vocab_size")} == {
        "n_layers": 30,
        "d_model": 576,
        "vocab_size": 49152,
    }
    model, tokenizer = load_model(info["path"], device="cpu")
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.get_output_embeddings().weight.shape[0] == 49152
    inputs = tokenizer("The capital of France is", return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, inputs["input_ids"].shape[1] :])


def test_gguf_chunks_are_joined_only_when_their_checksum_matches(tmp_path):
    import hashlib

    from saesteer.models import join_checked

    parts = [tmp_path / "a.part", tmp_path / "b.part"]
    parts[0].write_bytes(b"GGUF" + bytes(range(200)))
    parts[1].write_bytes(b"tail" * 1000)
    whole = parts[0].read_bytes() + parts[1].read_bytes()
    target = tmp_path / "model.gguf"
    with pytest.raises(ModelError, match="SHA-256"):
        join_checked(parts, "0" * 64, target)
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.part", "b.part"]
    join_checked(parts, hashlib.sha256(whole).hexdigest(), target)
    assert target.read_bytes() == whole


def test_the_embedded_gemma3_is_registered_with_its_chunks():
    from saesteer.models import EMBEDDED, EmbeddedSource

    gemma = EMBEDDED["gemma-3-270m"]
    assert len(gemma.chunks) == 4 and gemma.sha256
    assert EmbeddedSource("gemma-3-270m").n_layers() == 18


def _logits_after(model, cache, ids):
    from saesteer.models import cache_keyword

    return model(ids, use_cache=True, **{cache_keyword(model): cache}).logits


@pytest.mark.parametrize("rows", [3, [2, 0, 2]])
def test_cache_rows_equal_a_deep_copy_and_leave_the_cache_as_it_was(any_tiny_model, rows):
    """Repeats (views) and picks (one gather) give the logits a deep copy would, and a
    forward on the new cache does not change the old one."""
    import copy

    from saesteer.models import cache_rows, returned_cache

    model, _ = any_tiny_model
    batch = 1 if isinstance(rows, int) else 3
    prefix = torch.arange(5, 11).repeat(batch, 1)
    cache = returned_cache(model(prefix, use_cache=True))
    before = [t.clone() for layer in cache.layers for t in (layer.keys, layer.values)]
    expected = copy.deepcopy(cache)
    if isinstance(rows, int):
        expected.batch_repeat_interleave(rows)
    else:
        expected.reorder_cache(torch.tensor(rows))
    n = rows if isinstance(rows, int) else len(rows)
    ids = torch.tensor([[3, 4]]).expand(n, 2)
    new = cache_rows(cache, rows if isinstance(rows, int) else torch.tensor(rows))
    torch.testing.assert_close(_logits_after(model, new, ids), _logits_after(model, expected, ids))
    after = [t for layer in cache.layers for t in (layer.keys, layer.values)]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


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

    from saesteer.models import _added_tokens_kwargs, auto_tokenizer

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

    from saesteer.models import _leading_member

    path = Path(gemma3_tokenizer.name_or_path)
    head = _leading_member(path / "tokenizer.json", "added_tokens")
    assert len(head) == len(gemma3_tokenizer.added_tokens_decoder) > 6000
    assert type(gemma3_tokenizer) is type(AutoTokenizer.from_pretrained(path))
    _assert_loads_as_transformers_does(path)


def test_load_model_and_load_tokenizer_return_transformers_tokenizer(tmp_path, tiny_gemma3_dir):
    import json

    from transformers import AutoTokenizer

    from saesteer.models import load_tokenizer

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
    from saesteer.models import _added_tokens_kwargs

    path = _added_tokens_dir(tmp_path)
    assert _added_tokens_kwargs(path)
    for name, text in extra.items():
        (path / name).write_text(text)
    assert _added_tokens_kwargs(path) == {}


def test_leading_member_reads_a_member_wherever_it_lies(tmp_path):
    """Any member order and spacing, a member past the first MiB and a cut inside a
    multi-byte character; None for a missing member or a file that is not JSON."""
    import json

    from saesteer.models import _leading_member

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


def test_a_cache_with_room_gives_the_logits_of_a_dynamic_cache(any_tiny_model):
    """Steps written in place, past the room given (the buffers double) and with rows
    leaving the batch, give the logits concatenation gives."""
    import copy

    from saesteer.models import cache_keyword, cache_with_room, returned_cache

    model, _ = any_tiny_model
    keyword = cache_keyword(model)
    prompt = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]])
    plain = returned_cache(model(prompt, use_cache=True))
    roomy = cache_with_room(copy.deepcopy(plain), 2)
    converted = [layer for layer in roomy.layers if hasattr(layer, "buffers")]
    assert converted  # the full-attention layers have room
    first = converted[0].buffers[0].data_ptr()
    ids, n = prompt[:, -1:], prompt.shape[1]
    for step in range(5):
        if step == 3:  # row 1 stops
            keep = torch.tensor([0, 2])
            plain.reorder_cache(keep)
            roomy.reorder_cache(keep)
            ids = ids[keep]
        position = torch.full((len(ids), 1), n + step)
        want = model(ids, position_ids=position, use_cache=True, **{keyword: plain}).logits
        got = model(ids, position_ids=position, use_cache=True, **{keyword: roomy}).logits
        torch.testing.assert_close(got, want)
        if step == 0:  # written in place, within the room
            assert converted[0].buffers[0].data_ptr() == first
        ids = want[:, -1].argmax(-1, keepdim=True)
