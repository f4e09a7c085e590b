"""`saesteer <step> ...`: the one entry point every workflow rule calls."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from saesteer import __version__
from saesteer.config import DEFAULT_SCHEMA, ConfigError
from saesteer.io import read_json, write_json, write_parquet

log = logging.getLogger("saesteer")


def cmd_check_config(args) -> None:
    from saesteer.config import configured_layers, load_config

    config = load_config(args.config, args.schema)
    print(f"{args.config}: ok, run {config['run']!r}, layers {configured_layers(config)}")


def cmd_embedded(args) -> None:
    from saesteer.models import EmbeddedSource

    log.info("embedded model at %s", EmbeddedSource(args.name).resolve(Path(args.resources)))


def cmd_model(args) -> None:
    from transformers import AutoConfig

    from saesteer.models import model_source

    path = model_source(args.source).resolve(Path(args.resources))
    cfg = AutoConfig.from_pretrained(path).get_text_config()
    info = {
        "source": args.source,
        "path": str(Path(path).resolve()),
        "dtype": args.dtype,
        "n_layers": cfg.num_hidden_layers,
        "d_model": cfg.hidden_size,
        "vocab_size": cfg.vocab_size,
    }
    write_json(info, args.out)
    log.info("model %s -> %s", args.source, info["path"])


def cmd_sae(args) -> None:
    from saesteer.saes import sae_source

    spec = json.loads(args.spec)
    descriptor = sae_source(spec["source"]).describe(spec, args.layer)
    write_json(descriptor, args.out)
    log.info("layer %d: %s", args.layer, descriptor)


def cmd_features(args) -> None:
    from saesteer.features import FEATURES_SCHEMA, features_frame, select_features

    d_sae = read_json(args.sae)["d_sae"]
    ids = select_features(json.loads(args.spec), args.layer, d_sae)
    write_parquet(features_frame(args.layer, ids), args.out, FEATURES_SCHEMA)
    log.info("layer %d: %d features", args.layer, len(ids))


def cmd_logit_lens(args) -> None:
    import polars as pl

    from saesteer.logit_lens import LOGIT_LENS_SCHEMA, logit_lens_frame, logit_lens_topk
    from saesteer.models import load_model
    from saesteer.saes import load_sae

    model_info, descriptor = read_json(args.model), read_json(args.sae)
    if descriptor["d_in"] != model_info["d_model"]:
        raise ConfigError(
            f"layer {descriptor['layer']}: SAE d_in={descriptor['d_in']} does not match "
            f"model d_model={model_info['d_model']}"
        )
    features = pl.read_parquet(args.features)["feature"].to_list()
    model, tokenizer = load_model(model_info["path"], model_info["dtype"], args.device)
    sae = load_sae(descriptor)
    ids, probs = logit_lens_topk(model, sae.W_dec, features, args.top_k, args.batch_size)
    frame = logit_lens_frame(descriptor["layer"], features, ids, probs, tokenizer)
    write_parquet(frame, args.out, LOGIT_LENS_SCHEMA)
    log.info("layer %d: logit lens of %d features", descriptor["layer"], len(features))


def cmd_manifest(args) -> None:
    saes = [read_json(p) for p in args.sae]
    manifest = {
        "run": args.run,
        "saesteer_version": __version__,
        "model": read_json(args.model),
        "layers": {str(d["layer"]): d for d in sorted(saes, key=lambda d: d["layer"])},
    }
    write_json(manifest, args.out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="saesteer", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    steps = parser.add_subparsers(dest="step", required=True)

    def step(name, func, help):
        sub = steps.add_parser(name, help=help)
        sub.set_defaults(func=func)
        return sub

    p = step("check-config", cmd_check_config, "validate a run config")
    p.add_argument("config")
    p.add_argument("--schema", default=str(DEFAULT_SCHEMA))

    p = step("embedded", cmd_embedded, "convert an embedded model to safetensors, once")
    p.add_argument("--name", required=True)
    p.add_argument("--resources", default="resources")

    p = step("model", cmd_model, "resolve the model, write model.json")
    p.add_argument("--source", required=True)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--resources", default="resources")
    p.add_argument("--out", required=True)

    p = step("sae", cmd_sae, "resolve one layer's SAE, write sae.json")
    p.add_argument("--layer", type=int, required=True)
    p.add_argument("--spec", required=True, help="the layer's `sae` settings as JSON")
    p.add_argument("--out", required=True)

    p = step("features", cmd_features, "select one layer's features")
    p.add_argument("--layer", type=int, required=True)
    p.add_argument("--sae", required=True)
    p.add_argument("--spec", required=True, help="the layer's `features` setting as JSON")
    p.add_argument("--out", required=True)

    p = step("logit-lens", cmd_logit_lens, "top-k logit-lens tokens of each feature")
    p.add_argument("--model", required=True)
    p.add_argument("--sae", required=True)
    p.add_argument("--features", required=True)
    p.add_argument("--top-k", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)

    p = step("manifest", cmd_manifest, "write the run manifest")
    p.add_argument("--run", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--sae", nargs="+", required=True)
    p.add_argument("--out", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ConfigError as e:
        log.error("%s", e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
