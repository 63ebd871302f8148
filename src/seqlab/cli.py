"""Command line: ``seqlab train | evaluate | predict | align | generate | datasets | models | tasks | probe |
experiment | serve | demo``.

Configuration mirrors the API. A TOML file (``--config run.toml``) has the sections
``[model]`` (``name`` plus the family's hyperparameters), ``[train]`` and ``[task]``; dotted
options override it (``--model.hidden_size 256 --train.lr 3e-3``). An unknown key is an error
naming the key and the valid ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from seqlab.config import check_keys, load_toml, merge, parse_overrides, to_dict
from seqlab.errors import SeqlabError
from seqlab.formatting import format_table

__all__ = ["main", "format_table"]

SECTIONS = ("model", "train", "task", "reader")


def _settings(args: argparse.Namespace, extra: list[str]) -> dict[str, Any]:
    """Merge defaults < TOML file < --model NAME / --head < dotted overrides."""
    cfg: dict[str, Any] = load_toml(args.config) if args.config else {}
    check_keys(cfg, SECTIONS, f"config file {args.config}")
    if args.model:
        cfg = merge(cfg, {"model": {"name": args.model}})
    cfg = merge(cfg, parse_overrides(extra))
    check_keys(cfg, SECTIONS, "the command line (use --model.KEY, --train.KEY, --task.KEY or --reader.KEY)")
    return cfg


def _dataset(args: argparse.Namespace, task: str | None = None, reader: dict[str, Any] | None = None,
             task_options: dict[str, Any] | None = None) -> Any:
    """A bundled dataset (posing ``task`` if given), or the user's files: ``args.dataset`` for
    training and, when given, ``args.valid`` / ``args.test`` used as they are; ``reader``: the
    reader's options (``--reader.mode line``, ``--reader.encoding latin-1``, ...) and
    ``args.format`` its format."""
    from seqlab.data import datasets

    valid, test, fmt = getattr(args, "valid", None), getattr(args, "test", None), getattr(args, "format", None)
    if args.dataset and Path(args.dataset).exists():
        if not task:
            from seqlab.tasks import TASKS

            raise SeqlabError(f"a data file needs --task ({', '.join(TASKS)})")
        for given in (valid, test):
            if given and not Path(given).exists():
                raise SeqlabError(f"{given}: no such data file")
        return datasets.load_files(task, args.dataset, valid, test, fmt, seed=args.seed, reader_options=reader,
                                   task_options=task_options)  # a task that carves its own splits reads them
    if valid or test or fmt or reader:
        raise SeqlabError("--valid, --test, --format and --reader.KEY are for data files; a bundled dataset has its "
                          "own splits and reader")
    if args.dataset and (Path(args.dataset).suffix or "/" in args.dataset) and args.dataset not in datasets.names():
        raise SeqlabError(f"{args.dataset}: no such data file (nor a bundled dataset: see `seqlab datasets`)")
    return datasets.load(args.dataset, seed=args.seed, task=task)  # --task poses another task the data can serve


def _model_and_data(args: argparse.Namespace, extra: list[str]) -> tuple[dict[str, Any], str, dict[str, Any], Any]:
    """``train`` and ``tune``: the merged settings, the family name, its model settings (a copy,
    without the name) and the dataset they run on."""
    cfg = _settings(args, extra)
    model_cfg = dict(cfg.get("model", {}))
    name = model_cfg.pop("name", None)
    if not name:
        raise SeqlabError("which model? pass --model NAME (see `seqlab models`)")
    return cfg, name, model_cfg, _dataset(args, args.task, dict(cfg.get("reader", {})), cfg.get("task"))


def cmd_train(args: argparse.Namespace, extra: list[str]) -> int:
    from seqlab.io import write_json
    from seqlab.models.registry import build
    from seqlab.train import distributed

    cfg, name, model_cfg, ds = _model_and_data(args, extra)
    head = model_cfg.pop("head", args.head)
    reader = dict(cfg.get("reader", {}))
    if args.no_recipe:
        model_cfg["recipe"] = False
    model = build(name, ds, task_options=cfg.get("task"), train=cfg.get("train"), head=head, **model_cfg)
    out = Path(args.out or f"runs/{ds.name}-{name}")
    info = distributed.init_from_env()  # torchrun sets the environment; a plain run is world 1
    try:
        try:
            model.fit(ds.train, valid=ds.valid or None, run_dir=out / "train", resume=not args.fresh)
        except KeyboardInterrupt:
            if (out / "train" / "checkpoint").exists():  # the trainer wrote one at the last optimizer step
                print(f"seqlab: interrupted; run the same command again to resume from {out / 'train'}", file=sys.stderr)
            else:  # a classical family fits in one go and keeps no checkpoint
                print(f"seqlab: interrupted; {name} keeps no checkpoint, so the same command starts over", file=sys.stderr)
            return 130
        if info.is_main:
            model.save(out / "model")
            # the argument as given (a bundled name or a data file), so `evaluate RUN` finds it again
            result = getattr(model, "result_", None)
            trained = {"steps": result.steps, "epochs_run": result.epochs_run, "stopped_by": result.stopped_by} \
                if result is not None and hasattr(result, "stopped_by") else None
            write_json(out / "run.json", {"dataset": args.dataset, "task": ds.task.name, "seed": args.seed,
                                          "valid": args.valid, "test": args.test, "format": args.format,
                                          "reader": reader, "trained": trained})
            if not ds.test:
                print(f"[seqlab] {ds.name} has no test examples: no test metrics", file=sys.stderr)
            metrics = model.evaluate(ds.test) if ds.test else None
            _print_json({"run": str(out), "test": metrics})
    finally:
        distributed.cleanup()
    return 0


def _print_json(obj: Any) -> None:
    """Valid JSON on stdout: a NaN or infinite number (JSON has none) is written as null, with a
    note on stderr naming where."""
    from seqlab.probes.results import json_ready

    bad = [k for k, v in _leaves(obj) if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        print(f"[seqlab] not a finite number, written as null: {', '.join(bad)}", file=sys.stderr)
    print(json.dumps(json_ready(obj), indent=2, allow_nan=False))


def _leaves(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(obj, dict):
        return [leaf for k, v in obj.items() for leaf in _leaves(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), obj)]


def cmd_evaluate(args: argparse.Namespace, extra: list[str]) -> int:
    """Score a run: on a data file given here, the whole file; else a split (``--split``) of the
    bundled dataset, or of the run's own data split as it was in training. Says which, and how
    many examples, on stderr."""
    from seqlab.data import datasets
    from seqlab.models.registry import load

    model = load(args.run)
    if args.dataset and Path(args.dataset).exists():
        examples = datasets.load_files(model.task.name, args.dataset, fractions=(1.0, 0.0, 0.0)).train
        scored = f"the whole file {args.dataset}"
    else:
        reader = None
        if not args.dataset:  # the run's own data, read and split as in training
            from seqlab.data.user_files import recorded_data

            recorded = recorded_data(args.run)
            reader = recorded.pop("reader")
            vars(args).update(recorded)
        task_config = getattr(model.task, "config", None)
        task_options = to_dict(task_config) if dataclasses.is_dataclass(task_config) else None
        examples = getattr(_dataset(args, model.task.name, reader, task_options), args.split)
        scored = f"the {args.split} split of {args.dataset} (seed {args.seed})"
    if not examples:
        raise SeqlabError(f"{scored} holds no examples")
    print(f"[seqlab] scoring {scored}: {len(examples):,} examples", file=sys.stderr)
    _print_json(model.evaluate(examples))
    return 0


def cmd_predict(args: argparse.Namespace, extra: list[str]) -> int:
    from seqlab.models.registry import load

    model: Any = load(args.run)  # a generator's own capabilities: generate, decoding
    inputs = _inputs(args, model)
    if args.generate:
        outs: list[Any] = model.generate(
            inputs, max_new_tokens=args.generate, temperature=args.temperature, top_k=args.top_k, seed=args.seed,
            top_p=args.top_p, method=args.method or "sample", beam=args.beam, stop_at_eos=args.stop_at_eos,
        )
    else:
        outs = model.predict(inputs)
    for x, y in zip(inputs, outs):
        print(json.dumps({"input": x, "prediction": y}, ensure_ascii=False))
    return 0


def cmd_align(args: argparse.Namespace, extra: list[str]) -> int:
    """Word times of a transcript in an audio file under a transcription model (CTC forced alignment)."""
    from seqlab.audio.align import align
    from seqlab.models.registry import load

    words = align(load(args.run), args.audio, args.text)
    _print_json({"audio": args.audio, "text": args.text,
                 "words": [{"word": w.word, "start": w.start, "end": w.end, "score": w.score} for w in words]})
    return 0


def _inputs(args: argparse.Namespace, model: Any = None) -> list[Any]:
    """The raw inputs from ``--text`` and ``--file`` lines, each read by the model's task
    (``Task.parse_input``: text as it is; numbers or a JSON record for a regression model)."""
    lines: list[str] = [*(getattr(args, "inputs", None) or []), *(args.text or [])]
    if args.file:
        from seqlab.data.readers import read_lines

        lines += [ln.rstrip("\n") for ln in read_lines(args.file) if ln.strip()]
    if not lines:
        raise SeqlabError("no inputs: pass --text TEXT (repeatable), --file FILE or (transcription) AUDIO_FILE")
    return [model.task.parse_input(x) for x in lines] if model is not None else lines


def cmd_generate(args: argparse.Namespace, extra: list[str]) -> int:
    """Decode from any generator: a language model continues each prompt; an encoder-decoder
    (generation task) turns each source into a new sequence."""
    from seqlab.models.registry import load

    model: Any = load(args.run)  # a generator's own capabilities: generate, decoding
    inputs = _inputs(args)
    task = model.task
    method = args.method or model.decoding.method
    if task.causal and not task.decodes_free:  # a language model continues each prompt
        if args.n_best > 1:
            raise SeqlabError("--n-best is for encoder-decoder models; an LM returns one continuation")
        outs: list[Any] = model.generate(
            inputs, max_new_tokens=args.max_new_tokens or 200, temperature=args.temperature, top_k=args.top_k,
            seed=args.seed, top_p=args.top_p, method=method, beam=args.beam, stop_at_eos=args.stop_at_eos,
        )
    elif task.decodes_free:  # a generator turns each source into a new sequence
        decoding = {"method": method, "beam": args.beam, "max_len": args.max_new_tokens or None,
                    "length_penalty": args.length_penalty, "alpha": args.alpha, "n_best": args.n_best,
                    "temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p, "seed": args.seed}
        outs = model.predict(inputs, decoding=decoding)
        if args.alignment:
            base = Path(args.alignment)
            for i, (x, y) in enumerate(zip(inputs, outs)):
                out_path = base if len(inputs) == 1 else base.with_name(f"{base.stem}-{i}{base.suffix or '.png'}")
                written = model.save_alignment(x, out_path, target=y[0] if args.n_best > 1 else y)
                print(f"[seqlab] attention heatmap: {written}", file=sys.stderr)
    else:
        raise SeqlabError(f"{args.run} is a {task.name} model; generate needs a language model or an encoder-decoder")
    for x, y in zip(inputs, outs):
        print(json.dumps({"input": x, "output": y}, ensure_ascii=False))
    return 0


def cmd_datasets(args: argparse.Namespace, extra: list[str]) -> int:
    from seqlab.data.datasets import catalog

    rows = [(d.name, d.task, d.size, d.licence, d.description) for d in catalog()]
    print(format_table(rows, ("name", "task", "size", "licence", "description")))
    return 0


def cmd_models(args: argparse.Namespace, extra: list[str]) -> int:
    from seqlab.models.registry import ALIASES, FAMILIES

    rows = [(f.name, f.description, ", ".join(f.tasks), f.context) for f in FAMILIES.values()]
    print(format_table(rows, ("name", "family", "tasks", "context")))
    if ALIASES:
        print("aliases: " + ", ".join(f"{a} -> {b}" for a, b in ALIASES.items()))
    return 0


def serving_context(family: Any, task: str) -> str:
    """How ``family`` (a registry Family) reads context on ``task``, derived from the task class
    and the family's config defaults (so the sheet cannot drift from the code): "causal", "bi",
    "causal, bi option" (``bidirectional=true`` switches), "bi, causal option" (``causal=true``, or
    for a recurrent family whose default recipe reads both directions ``bidirectional=false``,
    switches), or "bi enc, causal dec" (encoder-decoder)."""
    from dataclasses import fields

    from seqlab.tasks import TASKS

    cls = TASKS[task][0]
    if family.kind == "classical":  # an n-gram/HMM LM conditions on the past; HMM/CRF taggers decode whole sequences
        return "causal" if cls.causal else "bi"
    defaults = {f.name: f.default for f in fields(family.config_class())}
    defaults.update(family.defaults)
    if cls.output == "sequence_to_sequence":
        enc_bi = defaults["bidirectional"] if "bidirectional" in defaults else defaults.get("causal") is not True
        return f"{'bi' if enc_bi else 'causal'} enc, causal dec"
    if cls.causal:
        return "causal"
    if "bidirectional" in defaults:
        if defaults["bidirectional"]:
            return "bi"
        from seqlab.models.network import EndsConfig
        from seqlab.recipes import DataStats, derive
        from seqlab.train.trainer import TrainConfig

        own = {f.name for f in fields(family.config_class())}
        config = family.config_class()(**{k: v for k, v in family.defaults.items() if k in own})
        recipe = derive(family.name, cls, config, EndsConfig(), TrainConfig(), DataStats(1, 1), {})
        # the default recipe reads both directions where the task allows it; bidirectional=false is causal
        return "bi, causal option" if recipe.model.get("bidirectional") else "causal, bi option"
    if "causal" in defaults:  # None: the task decides, and this task is not causal
        return "causal" if defaults["causal"] else "bi, causal option"
    return "bi"


def cmd_tasks(args: argparse.Namespace, extra: list[str]) -> int:
    from seqlab.models.registry import FAMILIES
    from seqlab.tasks import TASKS

    rows = []
    for name, (cls, _) in TASKS.items():
        fams = [f for f in FAMILIES.values() if name in f.tasks]
        groups: dict[str, list[str]] = {}
        for f in fams:  # families grouped by how they read context on this task
            groups.setdefault(serving_context(f, name), []).append(f.name)
        context = "; ".join(f"[{how}] {' '.join(names)}" for how, names in groups.items())
        rows.append((name, cls.alignment, cls.loss_name, cls.decoding, ", ".join(cls.metric_names),
                     ", ".join(f.name for f in fams), context))
    print(format_table(rows, ("task", "input -> output", "loss", "decoding", "metrics", "families", "context")))
    return 0


def cmd_experiment(args: argparse.Namespace, extra: list[str]) -> int:
    """``experiment list``: one row per experiment; ``experiment run NAME``: run it, print the verdict."""
    from seqlab.experiments import EXPERIMENTS, run
    from seqlab.experiments.base import Size

    if args.action == "list":
        rows = [(e.name, ", ".join(e.families), e.claim) for e in EXPERIMENTS.values()]
        print(format_table(rows, ("experiment", "families", "claim")))
        return 0
    if not args.name:
        raise SeqlabError(f"which experiment? seqlab experiment run NAME; valid: {', '.join(EXPERIMENTS)}")
    size = cast(Size, args.size or ("quick" if args.quick else "full"))  # run() validates it
    print(run(args.name, size, args.out or f"runs/experiments/{args.name}", args.seed))
    return 0


def cmd_tune(args: argparse.Namespace, extra: list[str]) -> int:
    """Search learning rate, dropout and width on the validation split; the best trial is a run."""
    from seqlab.io import write_json
    from seqlab.tune import parse_space, tune

    cfg, name, model_cfg, ds = _model_and_data(args, extra)
    out = Path(args.out or f"runs/{ds.name}-{name}-tuned")
    space = parse_space(args.space) if args.space else None
    result = tune(name, ds, trials=args.trials, max_steps=args.budget_steps or None, space=space, out=out,
                  seed=args.seed, train=cfg.get("train"), task_options=cfg.get("task"), **model_cfg)
    write_json(out / "run.json", {"dataset": args.dataset, "task": ds.task.name, "seed": args.seed,
                                  "valid": args.valid, "test": args.test, "format": args.format,
                                  "reader": dict(cfg.get("reader", {})), "tuned": True})
    model = result.best_model  # type: ignore[attr-defined]
    test = model.evaluate(ds.test) if ds.test else None
    _print_json({"run": str(out), "best": result.best, "trials": len(result.trials), "test": test})
    return 0


def cmd_backtest(args: argparse.Namespace, extra: list[str]) -> int:
    """Rolling-origin evaluation (forecasting): a saved run on its own data, or --model fitted to
    a bundled dataset or data file first; prints each window's metrics and their mean."""
    from seqlab.forecast.backtest import backtest
    from seqlab.formatting import format_rows
    from seqlab.io import read_json
    from seqlab.models.registry import build, load

    cfg = _settings(args, extra)
    target = Path(args.target)
    if target.is_dir() and (target / "run.json").exists():
        if args.model:
            raise SeqlabError(f"{target} is a trained run: its model is backtested; --model is for a dataset or file")
        model: Any = load(target)
        run = read_json(target / "run.json")
        args.dataset, args.seed = run["dataset"], run.get("seed", 0)
        args.valid, args.test, args.format = run.get("valid"), run.get("test"), run.get("format")
        task_config = getattr(model.task, "config", None)
        ds = _dataset(args, model.task.name, run.get("reader") or None,
                      to_dict(task_config) if dataclasses.is_dataclass(task_config) else None)
    else:
        model_cfg = dict(cfg.get("model", {}))
        name = model_cfg.pop("name", None)
        if not name:
            raise SeqlabError("which model? pass --model NAME, or give a trained run directory")
        args.dataset = args.target
        ds = _dataset(args, args.task, dict(cfg.get("reader", {})) or None, cfg.get("task"))
        model = build(name, ds, task_options=cfg.get("task"), train=cfg.get("train"), **model_cfg)
        model.fit(ds.train, valid=ds.valid or None)
    if not hasattr(model.task, "h"):
        raise SeqlabError(f"backtest is for forecasting; this run's task is {model.task.name!r}")
    result = backtest(model, getattr(ds, args.split), args.windows, args.step)
    keys = [k for k in ("mase", "smape", "mae", "rmse", "owa", "msis", "coverage_80", "coverage_95", "crps")
            if k in result["mean"]]
    rows = [[f"t-{w['origin_back']}", *[w[k] for k in keys]] for w in result["windows"]]
    rows.append(["mean", *[result["mean"][k] for k in keys]])
    print(format_rows(rows, ["origin", *keys]))
    return 0


def cmd_demo(args: argparse.Namespace, extra: list[str]) -> int:
    from seqlab.demo import run_demo

    run_demo(out=Path(args.out or "runs/demo"))
    return 0


def cmd_serve(args: argparse.Namespace, extra: list[str]) -> int:
    from seqlab.probes.serve import serve

    return serve(args.run, host=args.host, port=args.port, open_browser=not args.no_browser)


def cmd_probe(args: argparse.Namespace, extra: list[str]) -> int:
    """Run one ``seqlab probe NAME`` sub-command (see :data:`seqlab.probes.commands.COMMANDS`)."""
    return int(args.probe_fn(args))


def _add_probe_parser(sub: Any) -> None:
    from seqlab.probes.commands import COMMANDS as PROBES

    pr = sub.add_parser("probe", help="probe a trained run: how its predictions use their context",
                        description="Probes of a saved run; each sub-command has --help.")
    probes = pr.add_subparsers(dest="probe", required=True)
    for name, (add_args, run) in PROBES.items():
        text = (run.__doc__ or name).strip().splitlines()[0]
        q = probes.add_parser(name, help=text, description=text)
        add_args(q)
        q.set_defaults(fn=cmd_probe, probe_fn=run)


def _port(text: str) -> int:
    """A TCP port for ``--port``: 0 (any free one) to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, found {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, found {port}")
    return port


def _parser() -> argparse.ArgumentParser:
    from seqlab.tasks import TASKS  # the task registry names the tasks a data file may pose

    p = argparse.ArgumentParser(prog="seqlab", description="Sequence modeling: train, evaluate, predict, compare.")
    sub = p.add_subparsers(dest="verb", required=True)
    t = sub.add_parser("train", help="train a model on a bundled dataset or a data file",
                       description="Train; extra --model.KEY / --train.KEY / --task.KEY options set the configuration.")
    t.add_argument("dataset", help="bundled dataset name (see `seqlab datasets`) or a data file")
    t.add_argument("--model", help="model family (see `seqlab models`)")
    t.add_argument("--head", help="output head (task dependent)")
    t.add_argument("--task", help=f"task of a data file ({', '.join(TASKS)})")
    t.add_argument("--config", help="TOML file with [model], [train] and [task] sections")
    t.add_argument("--out", help="run directory (default runs/DATASET-MODEL)")
    t.add_argument("--no-recipe", action="store_true",
                   help="neural families: keep the plain defaults instead of the data-dependent recipe "
                        "(dropout, context, character CNN, learning rate, epochs and patience from the data's size)")
    t.add_argument("--fresh", action="store_true",
                   help="start the run directory over instead of resuming it (a resume must have the same data and "
                        "settings; a larger --train.epochs continues it)")
    t.add_argument("--seed", type=int, default=0, help="data split seed")
    t.add_argument("--valid", help="a validation file, used as it is (default: carved from the training file)")
    t.add_argument("--test", help="a test file, used as it is (default: carved from the training file)")
    t.add_argument("--format", choices=("conll", "jsonl", "text", "csv"),
                   help="the data files' format (default: by extension); reader options: --reader.KEY VALUE "
                        "(--reader.mode line, --reader.encoding latin-1, --reader.text_col review, ...)")
    t.set_defaults(fn=cmd_train)
    e = sub.add_parser("evaluate", help="evaluate a saved run on a dataset split")
    e.add_argument("run", help="run directory written by `seqlab train`")
    e.add_argument("dataset", nargs="?", help="a bundled dataset (its --split is scored) or a data file (all of it is "
                   "scored); default: the run's own data and split")
    e.add_argument("--split", choices=("train", "valid", "test"), default="test")
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(fn=cmd_evaluate)
    r = sub.add_parser("predict", help="predict with a saved run")
    r.add_argument("run")
    r.add_argument("inputs", nargs="*", metavar="INPUT", help="inputs as arguments (transcription: audio files)")
    r.add_argument("--text", action="append", help="an input (repeatable); tokens split on spaces for labeling")
    r.add_argument("--file", help="a file with one input per line")
    r.add_argument("--generate", type=int, default=0, help="LM: generate this many new tokens instead")
    r.add_argument("--method", choices=["sample", "greedy", "beam"], default="sample", help="how to generate")
    r.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (0 = greedy)")
    r.add_argument("--top-k", type=int, default=None, help="sample from the k most likely tokens")
    r.add_argument("--top-p", type=float, default=None, help="sample from the smallest set with this mass (nucleus)")
    r.add_argument("--beam", type=int, default=4, help="beam width for --method beam")
    r.add_argument("--stop-at-eos", action="store_true", help="end a continuation at <eos>")
    r.add_argument("--seed", type=int, default=0)
    r.set_defaults(fn=cmd_predict)
    a = sub.add_parser("align", help="transcription: word times of a transcript in an audio file (CTC forced alignment)")
    a.add_argument("run", help="a saved transcription run or model directory")
    a.add_argument("audio", help="an audio file (WAV, FLAC, ...)")
    a.add_argument("--text", required=True, help="the transcript to align")
    a.set_defaults(fn=cmd_align)

    g = sub.add_parser("generate", help="decode from a saved LM or encoder-decoder",
                       description="Continue prompts (lm) or transduce sources (generation) with a saved run.")
    g.add_argument("run")
    g.add_argument("--text", action="append", help="a prompt or source (repeatable)")
    g.add_argument("--file", help="a file with one prompt or source per line")
    g.add_argument("--max-new-tokens", type=int, default=0, help="output length limit (lm default 200; "
                   "encoder-decoder default twice the source length + 10)")
    g.add_argument("--method", choices=["sample", "greedy", "beam"], default=None,
                   help="default: sample for an lm, greedy for an encoder-decoder")
    g.add_argument("--beam", type=int, default=4, help="beam width")
    g.add_argument("--n-best", type=int, default=1, help="encoder-decoder with --method beam: the n best outputs")
    g.add_argument("--length-penalty", choices=["none", "gnmt", "power"], default="gnmt", help="beam length normalisation")
    g.add_argument("--alpha", type=float, default=0.6, help="length penalty strength")
    g.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (0 = greedy)")
    g.add_argument("--top-k", type=int, default=None)
    g.add_argument("--top-p", type=float, default=None)
    g.add_argument("--stop-at-eos", action="store_true", help="lm: end a continuation at <eos>")
    g.add_argument("--alignment", metavar="PNG", help="encoder-decoder: save each output's attention heatmap "
                   "(several inputs: PNG-0.png, PNG-1.png, ...)")
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(fn=cmd_generate)
    for name, fn, text in (("datasets", cmd_datasets, "list bundled datasets with size, task and licence"),
                           ("models", cmd_models, "list model families"),
                           ("tasks", cmd_tasks, "the formulation sheet: one row per task (context: causal = sees "
                            "only the past, bi = the whole sequence; 'bi option' = bidirectional=true, 'causal "
                            "option' = causal=true; enc/dec = encoder/decoder)")):
        sub.add_parser(name, help=text, description=text).set_defaults(fn=fn)
    x = sub.add_parser("experiment", help="reproduce the field's claims: list, or run one and print its verdict",
                       description="list the experiments, or run one (trains, saves a PNG, prints HELD / NOT HELD)")
    x.add_argument("action", choices=("list", "run"))
    x.add_argument("name", nargs="?", help="the experiment to run (see `seqlab experiment list`)")
    x.add_argument("--quick", action="store_true", help="a few minutes on 2 cores (default: the full size)")
    x.add_argument("--size", choices=("tiny", "quick", "full"), default=None, help=argparse.SUPPRESS)
    x.add_argument("--out", help="where the plot goes (default runs/experiments/NAME)")
    x.add_argument("--seed", type=int, default=0)
    x.set_defaults(fn=cmd_experiment)
    u = sub.add_parser("tune", help="search learning rate, dropout and width on the validation split (Optuna)",
                       description="Each trial trains under a step budget and is scored on the validation split; "
                                   "the best is saved as an ordinary run, every trial in tune.json.")
    u.add_argument("dataset", help="bundled dataset name or a data file")
    u.add_argument("--model", help="neural model family")
    u.add_argument("--task", help=f"task of a data file ({', '.join(TASKS)})")
    u.add_argument("--config", help="TOML file with [model], [train] and [task] sections (held fixed)")
    u.add_argument("--trials", type=int, default=12, help="number of trials (default 12)")
    u.add_argument("--budget-steps", type=int, default=1500, help="optimizer steps per trial (0: the recipe's epochs)")
    u.add_argument("--space", nargs="*", help="NAME=log:LOW:HIGH | NAME=float:LOW:HIGH | NAME=choice:A,B (default: "
                                              "lr, dropout, d_model)")
    u.add_argument("--out", help="run directory of the best trial (default runs/DATASET-MODEL-tuned)")
    u.add_argument("--seed", type=int, default=0)
    u.add_argument("--valid", help="validation file (with a data file)")
    u.add_argument("--test", help="test file (with a data file)")
    u.add_argument("--format", help="data file format")
    u.set_defaults(fn=cmd_tune)
    b = sub.add_parser("backtest", help="forecasting: rolling-origin evaluation of a run, or of --model on a dataset",
                       description="Evaluate at --windows forecast origins --step apart (the last leaves each "
                                   "series' final h values); --model.KEY / --task.KEY set a model fitted here.")
    b.add_argument("target", help="a trained run directory, a bundled dataset or a data file")
    b.add_argument("--model", help="model family to fit first (with a dataset or file)")
    b.add_argument("--task", help="task of a data file (forecasting)")
    b.add_argument("--config", help="TOML file with [model] and [task] sections")
    b.add_argument("--windows", type=int, default=3, help="number of forecast origins (default 3)")
    b.add_argument("--step", type=int, default=None, help="steps between origins (default h)")
    b.add_argument("--split", choices=("train", "valid", "test"), default="test", help="the series to cut (default test)")
    b.add_argument("--seed", type=int, default=0)
    b.set_defaults(fn=cmd_backtest)
    d = sub.add_parser("demo", help="train neural and classical models on bundled data and print one table (about 8 minutes on 2 cores; the same numbers on any machine)")
    d.add_argument("--out", help="where the runs go (default runs/demo)")
    d.set_defaults(fn=cmd_demo)
    v = sub.add_parser("serve", help="a local web page: swap a token, see how the predictions change",
                       description="Serve a page on this machine to probe a saved run's sensitivity to token swaps.")
    v.add_argument("run", help="run directory written by `seqlab train` (or a saved model directory)")
    v.add_argument("--port", type=_port, default=8765, help="port (0: any free port)")
    v.add_argument("--host", default="127.0.0.1", help="loopback address to bind (127.0.0.1, ::1 or localhost only)")
    v.add_argument("--no-browser", action="store_true", help="print the URL only; do not open a browser")
    v.set_defaults(fn=cmd_serve)
    _add_probe_parser(sub)
    from seqlab.forecast.m3bench import add_parser as add_benchmark_parser

    add_benchmark_parser(sub)  # seqlab benchmark forecasting m3
    from seqlab.compare.commands import (
        add_parsers as add_compare_parsers,  # seqlab compare, seqlab report
    )

    add_compare_parsers(sub, ", ".join(TASKS))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.verb not in ("train", "tune", "backtest"):  # the verbs that take --model.KEY / --train.KEY
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.fn(args, extra))
    except SeqlabError as e:
        print(f"seqlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("seqlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
