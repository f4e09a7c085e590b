"""Every model stage in bfloat16 against float32, and no float64 on the model's device.

The paper's configs run Gemma-2 in bfloat16 on a GPU (or Apple's mps, which has no
float64). Here each stage runs on the tiny Llama and the tiny Gemma-2, in both dtypes,
under `device_audit.Float64OnDevice`."""

from __future__ import annotations

import polars as pl
import pytest
import torch

from saesteer.concepts.answers import generate_concepts
from saesteer.concepts.diffmean import diffmean_directions
from saesteer.gen_metrics import perplexities, text_tokens
from saesteer.generation import generate_grid
from saesteer.generations_table import GENERATIONS_SCHEMA
from saesteer.logit_lens import logit_lens_topk
from saesteer.mining import MiningSettings, mine_top_examples, top_examples_by_feature
from saesteer.models import load_model
from saesteer.output_score import score_prompt_fast
from saesteer.prompts import encode_prompt
from saesteer.residuals import collect_residuals
from saesteer.sae_metrics import sae_metrics
from saesteer.sampling import SamplingSettings
from saesteer.settings import settings_for
from saesteer.steering import SteeringTarget, steering_directions
from tests.device_audit import Float64OnDevice
from tests.helpers import TINY_ARCHITECTURES, TINY_VOCAB, random_sae

LAYER = 1
FEATURES = [0, 3, 17, 64, 128, 255]
PREFIXES = ["w1 w2", "w3", "w4 w5 w6 w7"]
# Texts whose perplexity is compared across dtypes (sampled texts differ between them).
TEXTS = pl.DataFrame(
    {
        "prefix": ["w1 w2", "w1 w2", "w3", "w4 w5 w6 w7"],
        "continuation": [" w9 w10 w11 w12", " w30", " w7 w7 w7 w7 w7 w8", " w100 w3"],
    }
)


def _chunks() -> torch.Tensor:
    generator = torch.Generator().manual_seed(11)
    tokens = torch.randint(3, TINY_VOCAB, (12, 16), generator=generator)
    tokens[:, 0] = 1
    return tokens


def run_stages(model, tokenizer, sae) -> dict:
    """Each stage once, small: the outputs a dtype comparison reads."""
    chunks, special = _chunks(), tokenizer.all_special_ids
    ids, probs, _ = logit_lens_topk(model, sae.W_dec, FEATURES, top_k=8)
    prompt = encode_prompt(tokenizer, "w5 w9 w20 w3")
    score = score_prompt_fast(model, sae, LAYER, prompt, FEATURES, ids[:, :5], 10.0, 4)
    mining = settings_for(
        MiningSettings, n_examples=4, context_before=3, context_after=2, batch_size=5
    )
    top = mine_top_examples(
        collect_residuals(model, [LAYER], chunks)[LAYER], sae, chunks, FEATURES, special, mining
    )
    sampling = settings_for(SamplingSettings, max_new_tokens=6, stop=None, batch_size=8)
    grid = generate_grid(
        SteeringTarget(model, tokenizer, sae, LAYER), FEATURES[:3], [0.0, 4.0], PREFIXES, sampling
    )
    ppl = perplexities(model, *text_tokens(TEXTS, tokenizer), True, 2)
    examples = {
        f: [chunks[i, 1:9].tolist(), chunks[i + 6, 3:12].tolist()]
        for i, f in enumerate(FEATURES[:3])
    }
    diffmean = diffmean_directions(model, tokenizer, LAYER, examples, FEATURES[:3], torch.ones(3))
    concepts = pl.DataFrame(
        {"layer": [LAYER] * 2, "feature": FEATURES[:2], "concept": ["w7", "w8"]}
    )
    rows = steering_directions(sae, FEATURES[:2])
    answers = generate_concepts(
        SteeringTarget(model, tokenizer, sae, LAYER),
        concepts,
        {FEATURES[0]: ["w1", "w2 w3"], FEATURES[1]: ["w9", "w4"]},
        [4.0],
        {"sae": dict(zip(FEATURES[:2], rows, strict=True))},
        1,
        settings_for(SamplingSettings, max_new_tokens=5, batch_size=8),
        protocol="chat",
    )
    metrics = sae_metrics(
        model,
        sae,
        LAYER,
        chunks,
        collect_residuals(model, [LAYER], chunks)[LAYER],
        special,
        ce_chunks=4,
        batch_size=5,
    )
    return {
        "lens_ids": ids,
        "lens_probs": probs,
        "score": score,
        "mined": top_examples_by_feature(top, FEATURES, tokenizer),
        "grid": grid,
        "perplexity": ppl,
        "diffmean": diffmean,
        "answers": answers,
        "sae_metrics": metrics,
    }


@pytest.fixture(scope="module", params=TINY_ARCHITECTURES)
def both_dtypes(request, tiny_model_dir, tiny_gemma2_dir, tiny_gemma3_dir):
    paths = {"llama": tiny_model_dir, "gemma2": tiny_gemma2_dir, "gemma3": tiny_gemma3_dir}
    path = paths[request.param]
    sae = random_sae("jumprelu", layer=LAYER, seed=4)
    runs = {}
    for dtype in ("float32", "bfloat16"):
        model, tokenizer = load_model(path, dtype=dtype, device="cpu")
        with Float64OnDevice(model, sae) as audit:
            runs[dtype] = run_stages(model, tokenizer, sae)
        runs[dtype]["violations"] = audit.violations
    return runs


def test_the_audit_sees_float64_on_the_device(tiny_model):
    model, _ = tiny_model
    ids = torch.tensor([[1, 5, 9]])
    device = next(model.parameters()).device
    with Float64OnDevice(model) as audit:
        logits = model(ids).logits
        host = logits.cpu().double()  # on the host: allowed
        torch.zeros(3, dtype=torch.float64)  # created on the host: allowed
        torch.zeros(3, dtype=torch.float64, device="cpu")  # the host, said so: allowed
        buffer = torch.zeros(3, dtype=torch.float64)
        buffer.copy_(logits[0, 0, :3])  # a transfer into a host buffer: allowed
        buffer += 1.0  # and it stays on the host
        assert audit.violations == []
        logits.double()
        logits.to(torch.float64)
        torch.rand(4, dtype=torch.float64, device=device)
        torch.as_tensor([0.5], dtype=torch.float64, device=device)
        host.to(device)
        logits * torch.tensor(0.5, dtype=torch.float64)  # a host float64 operand
    assert [v.split(":")[0] for v in audit.violations] == [
        "double",
        "to",
        "rand",
        "as_tensor",
        "to",
        "mul",
    ]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_no_stage_makes_float64_on_the_models_device(both_dtypes, dtype):
    assert both_dtypes[dtype]["violations"] == []


def test_bfloat16_stages_agree_with_float32(both_dtypes):
    """Tolerances: bfloat16 keeps 8 bits of mantissa (relative error ~0.4% per operation),
    so values get a few times the measured gap (in comments), and ranks, peaks and sampled
    tokens, which flip only among near-ties, must agree for most rows."""
    full, half = both_dtypes["float32"], both_dtypes["bfloat16"]
    # logit lens: the same top token for most features (measured: all), its probability
    # within 0.005 (measured: 1.5e-4)
    assert (full["lens_ids"][:, 0] == half["lens_ids"][:, 0]).float().mean() >= 0.8
    assert (full["lens_probs"][:, 0] - half["lens_probs"][:, 0]).abs().max() <= 0.005
    # output score: scores within 0.005 (1.3e-4), min ranks within 3 of 128 places (0)
    for key, tol in (("score", 0.005), ("max_prob", 0.005), ("min_rank", 3)):
        assert (full["score"][key] - half["score"][key]).abs().max() <= tol, key
    # mining: the same strongest example for most features (5 of 5, 5 of 6), its peak
    # activation within 5%
    same = [
        full["mined"][f][0].token_ids == half["mined"][f][0].token_ids
        for f in FEATURES
        if full["mined"][f] and half["mined"][f]
    ]
    assert len(same) >= 4 and sum(same) / len(same) >= 0.75
    for f in FEATURES:
        for a, b in zip(full["mined"][f][:1], half["mined"][f][:1], strict=False):
            if a.token_ids == b.token_ids:
                assert max(a.values) == pytest.approx(max(b.values), rel=0.05, abs=0.02)
    # sampling: the first sampled token is the same in most rows (all, and every whole text)
    first = [
        a.split()[:1] == b.split()[:1]
        for a, b in zip(full["grid"]["continuation"], half["grid"]["continuation"], strict=True)
    ]
    assert sum(first) / len(first) >= 0.75
    # perplexity of the same texts within 2% (0.6%)
    for a, b in zip(full["perplexity"], half["perplexity"], strict=True):
        assert b == pytest.approx(a, rel=0.02)
    # DiffMean: the same direction, cosine >= 0.999 (0.99998)
    for f, direction in full["diffmean"].items():
        cosine = torch.cosine_similarity(direction, half["diffmean"][f].float(), dim=0)
        assert cosine >= 0.999
    # concept answers: the first token is the same in most rows (all)
    pairs = zip(full["answers"]["response"], half["answers"]["response"], strict=True)
    agree = [a.split()[:1] == b.split()[:1] for a, b in pairs]
    assert sum(agree) / len(agree) >= 0.75
    # SAE metrics: unexplained variance and L0 within 2% (0.06%), cross-entropies within
    # 0.02 nats (0.006); a random SAE's loss recovered divides by a near-zero gap, so not it
    full_m, half_m = full["sae_metrics"], half["sae_metrics"]
    unexplained = [1 - m["variance_explained"] for m in (full_m, half_m)]
    assert unexplained[1] == pytest.approx(unexplained[0], rel=0.02)
    assert half_m["l0"] == pytest.approx(full_m["l0"], rel=0.02)
    for key in ("ce_clean", "ce_with_sae", "ce_zero_ablation"):
        assert half_m[key] == pytest.approx(full_m[key], abs=0.02), key


def test_the_grid_schema_holds_in_bfloat16(both_dtypes):
    grid = both_dtypes["bfloat16"]["grid"]
    assert dict(grid.schema) == GENERATIONS_SCHEMA
    assert grid.height == 3 * 1 * len(PREFIXES) + 3 * len(PREFIXES)
