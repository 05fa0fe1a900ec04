"""Command line: `python -m ganae train | eval | compare | presets`.

    python -m ganae train --preset ring8-recommended --steps 2000 --out checkpoints/ring8.pt
    python -m ganae train --set data.name=digits --set model.family=vae --steps 500
    python -m ganae train --config run.json --dry-run          # build, 2 steps, save + reload, no output kept
    python -m ganae eval checkpoints/ring8.pt                   # recompute its metrics
    python -m ganae compare vanilla-vs-recommended --seeds 4 --ray 127.0.0.1:6379   # one Ray task per variant
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

from . import checkpoint, device, presets
from .checkpoint import CheckpointError
from .cluster import ClusterError
from .data import DataError
from .config import ConfigError, ConfigWarning, RunConfig
from .trainer import DivergenceError, Trainer


class UserError(Exception):
    """Something the user can fix; printed as one sentence, exit code 2."""


def build_config(args: argparse.Namespace) -> RunConfig:
    cfg = presets.get(args.preset) if args.preset else RunConfig()
    if args.config:
        base = cfg.to_dict()
        for sec, vals in read_config_file(Path(args.config)).items():
            if not isinstance(vals, dict):
                raise ConfigError(sec, "expected a mapping of fields")
            base.setdefault(sec, {}).update(vals)
        cfg = RunConfig.from_dict(base)
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set expects section.field=value, got '{item}'")
        cfg = cfg.set(key.strip(), value.strip())
    if args.steps:
        cfg = cfg.with_updates(**{"train.steps": args.steps})
    if args.device:
        cfg = cfg.with_updates(**{"train.device": args.device})
    if args.seed is not None:
        cfg = cfg.with_updates(**{"train.seed": args.seed})
    return cfg.validate()


CONFIG_MAX_BYTES = 1 << 20             # a config file is a few hundred bytes; refuse anything past 1 MB unread


def read_config_file(path: Path) -> dict:
    """The JSON object in a --config file; UserError (one sentence) for a file that is missing, too large, not
    UTF-8, not JSON (truncated, a number with thousands of digits, nested thousands deep) or not an object."""
    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    if path.stat().st_size > CONFIG_MAX_BYTES:
        raise UserError(f"config file {path} is larger than {CONFIG_MAX_BYTES >> 20} MB; a config is a small JSON "
                        "object such as {\"objective\": {\"loss\": \"wgan\"}}")
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise UserError(f"config file {path} is not UTF-8 text; save it as plain JSON") from None
    except json.JSONDecodeError as e:
        raise UserError(f"config file {path} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") \
            from None
    except (ValueError, RecursionError):     # ValueError: an int of more than 4,300 digits
        raise UserError(f"config file {path} could not be read as JSON (a number too long or nesting too deep)") \
            from None
    if not isinstance(data, dict):
        raise UserError(f"config file {path} holds a JSON {type(data).__name__}; it must be an object of sections, "
                        "e.g. {\"objective\": {\"loss\": \"wgan\"}}")
    return data


def _fmt(metrics: dict[str, float], keys: tuple[str, ...] = ()) -> str:
    keys = keys or tuple(metrics)
    return "  ".join(f"{k} {metrics[k]:.4g}" for k in keys if k in metrics and math.isfinite(metrics[k]))


def cmd_train(args: argparse.Namespace) -> int:
    cfg = build_config(args)
    device.set_threads(cfg.train.threads or 1)
    trainer = Trainer(cfg)
    steps = 2 if args.dry_run else cfg.train.steps
    chunk = max(1, min(50, steps // 20 or 1))
    eval_every = args.eval_every or max(chunk, steps // 10)
    log = sys.stderr
    print(f"ganae: {cfg.model.family} on {cfg.data.name} · {device.describe(trainer.device)} · {steps} steps",
          file=log)
    t0, last_print = time.perf_counter(), 0.0
    while trainer.step_count < steps:
        trainer.step(min(chunk, steps - trainer.step_count))
        if trainer.step_count % eval_every < chunk or trainer.step_count == steps:
            trainer.evaluate()
        now = time.perf_counter()
        if not args.quiet and (now - last_print > 1.0 or trainer.step_count == steps):
            last_print = now
            done = trainer.step_count / steps
            bar = "#" * int(done * 30)
            print(f"\r[{bar:<30}] {trainer.step_count}/{steps}  {trainer.step_count / (now - t0):.0f} it/s  "
                  f"{_fmt(trainer.last)}", end="", file=log, flush=True)
    if not args.quiet:
        print(file=log)
    final = trainer.evaluate(record=False)
    print(json.dumps({"step": trainer.step_count, "seconds": round(time.perf_counter() - t0, 2), **final}))
    if args.dry_run:
        with tempfile.TemporaryDirectory() as tmp:
            path = trainer.save(Path(tmp) / "dry-run.pt")
            again = Trainer.load(path, device=trainer.device)
            if again.step_count != trainer.step_count:
                raise UserError("dry run: the reloaded checkpoint does not match the run")
        print("dry run OK: built, trained 2 steps, evaluated, saved and reloaded", file=log)
    elif args.out:
        note = args.note or f"python -m ganae {' '.join(sys.argv[1:])}"
        payload = trainer.payload(note=note, metrics=final)
        if args.slim:   # shipped models: weights, config, history; no optimiser moments (a third of the size)
            payload.pop("optim"), payload.pop("sched")
        path = checkpoint.save(args.out, payload)
        print(f"saved {path}", file=log)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    payload = checkpoint.load(args.checkpoint)
    trainer = Trainer.from_payload(payload, device=args.device or None)
    result = trainer.evaluate(record=False)
    recorded = payload.get("metrics", {})
    report = {"step": trainer.step_count, "metrics": result}
    if recorded:
        report["recorded"] = recorded
        report["matches_recorded"] = all(
            k in result and math.isclose(result[k], v, rel_tol=1e-4, abs_tol=1e-6) for k, v in recorded.items())
    print(json.dumps(report, indent=2))
    return 0 if report.get("matches_recorded", True) else 1


def cmd_classifier(args: argparse.Namespace) -> int:
    from . import features
    device.set_threads(1)
    net, stats, _ = features.train_classifier(args.data, steps=args.steps, seed=args.seed, device=args.device,
                                              log=lambda m: print(m, file=sys.stderr))
    out = args.out or features.classifier_path(args.data)
    note = f"python -m ganae {' '.join(sys.argv[1:])}"
    features.save_classifier(net.cpu(), out, args.data, stats, note)
    print(json.dumps({"saved": str(out), **stats}))
    return 0


def parse_variant(text: str) -> "Variant":
    """'NAME:section.field=value,section.field=value' -> Variant (values parsed like --set)."""
    from .compare import Variant
    name, sep, rest = text.partition(":")
    if not sep or not name.strip():
        raise UserError(f"--variant expects NAME:section.field=value[,...], got '{text}'")
    probe = RunConfig()
    updates = {}
    for item in filter(None, (x.strip() for x in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise UserError(f"--variant '{name}': '{item}' is not section.field=value")
        probe = probe.set(key.strip(), value.strip())
        sec, _, fld = key.strip().partition(".")
        updates[key.strip()] = getattr(getattr(probe, sec), fld)
    return Variant(name.strip(), updates)


def cmd_compare(args: argparse.Namespace) -> int:
    from . import compare
    named = compare.comparisons()
    if args.list:
        for name, (what, _, _) in named.items():
            print(f"{name:26s} {what}")
        return 0
    if args.comparison:
        if args.comparison not in named:
            raise UserError(f"'{args.comparison}' is not a comparison; choose one of: {', '.join(named)}")
        _, base, variants = named[args.comparison]
    else:
        base = build_config(args)
        variants = []
    variants = list(variants) + [parse_variant(v) for v in args.variant or []]
    if args.steps:
        base = base.with_updates(**{"train.steps": args.steps})
    device.set_threads(1)
    seeds = list(range(args.seeds))
    steps = base.train.steps
    if args.ray:
        from . import cluster
        print(f"comparing {len(variants) + 1} variants x {len(seeds)} seeds for {steps} steps on Ray "
              f"({args.ray})", file=sys.stderr)
        cmp = cluster.sweep(base, variants, seeds, steps, address=args.ray, device=args.device or None,
                            group=args.ray_group, progress=cluster.text_progress())
    else:
        cmp = compare.Comparison(base, variants, seeds=seeds, device=args.device or None)
        print(f"comparing {len(cmp.variants)} variants x {len(seeds)} seeds for {steps} steps", file=sys.stderr)
        done = 0
        while done < steps:
            k = min(max(1, steps // 10), steps - done)
            cmp.step(k)
            done += k
            print(f"  {done}/{steps}", file=sys.stderr)
        if cmp.cohort is not None:
            groups = [len(idx) for idx, _ in cmp.cohort.groups]
            print(f"trained as {len(groups)} group(s) of {', '.join(map(str, groups))} run(s) (ensembles by "
                  f"structure)", file=sys.stderr)
            for note in cmp.cohort.notes:
                print(f"  solo: {note}", file=sys.stderr)
        cmp.evaluate()
    table = cmp.table()
    for row in table:
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}))
    print(json.dumps({"winners": cmp.winners()}))
    if args.out:
        for p in cmp.write(args.out):
            print(f"wrote {p}", file=sys.stderr)
    for why in dict.fromkeys(cmp.failed.values()):
        print(f"error: {why}", file=sys.stderr)
    return 1 if cmp.failed else 0


def cmd_presets(args: argparse.Namespace) -> int:
    for p in presets.PRESETS.values():
        print(f"{p.name:24s} {p.title} -- {p.description}")
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m ganae", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="train a run and optionally save a checkpoint")
    tr.add_argument("--preset", help="start from a named preset (see `presets`)")
    tr.add_argument("--config", help="a JSON file with sections data/model/objective/tricks/optim/train")
    tr.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE", help="override one field")
    tr.add_argument("--steps", type=int, help="number of iterations (train.steps)")
    tr.add_argument("--seed", type=int, help="train.seed")
    tr.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps")
    tr.add_argument("--eval-every", type=int, default=0, help="evaluate every N steps (default: 10 times a run)")
    tr.add_argument("--out", help="save the trained run here (.pt)")
    tr.add_argument("--note", help="a note stored in the checkpoint (default: this command line)")
    tr.add_argument("--slim", action="store_true", help="save without optimiser state (smaller; for shipping)")
    tr.add_argument("--dry-run", action="store_true", help="2 steps, evaluate, save and reload in a temp folder")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=cmd_train)
    ev = sub.add_parser("eval", help="recompute a checkpoint's metrics (exit 1 if they differ from the recorded)")
    ev.add_argument("checkpoint")
    ev.add_argument("--device", default="", help="auto | cpu | cuda | mps")
    ev.set_defaults(func=cmd_eval)
    cp = sub.add_parser("compare", help="compare variants of a config with the same seeds (CSV + PNG)")
    cp.add_argument("comparison", nargs="?", help="a named comparison (see --list)")
    cp.add_argument("--list", action="store_true", help="list the named comparisons")
    cp.add_argument("--preset", help="base preset (when no named comparison is given)")
    cp.add_argument("--config", help="base config JSON")
    cp.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE", help="override a base field")
    cp.add_argument("--variant", action="append", metavar="NAME:SECTION.FIELD=VALUE[,...]",
                    help="a variant: its changes from the base")
    cp.add_argument("--seeds", type=int, default=1, help="run every variant with seeds 0..K-1")
    cp.add_argument("--steps", type=int, help="steps per run (default: the base's train.steps)")
    cp.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    cp.add_argument("--device", help="auto | cpu | cuda | mps")
    cp.add_argument("--out", help="folder for table.csv, histories.csv, losses.png, samples.png")
    cp.add_argument("--ray", nargs="?", const="auto", metavar="ADDRESS",
                    help="train on a Ray cluster (HOST:PORT, or auto: the one started on this machine); one task "
                         "per (variant, seed group), the same table as a local run")
    cp.add_argument("--ray-group", type=int, metavar="K", help="seeds per Ray task (default: enough tasks to keep "
                                                              "every CPU of the cluster busy)")
    cp.set_defaults(func=cmd_compare)
    cl = sub.add_parser("classifier", help="train the offline metric classifier of an image dataset")
    cl.add_argument("--data", default="digits")
    cl.add_argument("--steps", type=int, default=1500)
    cl.add_argument("--seed", type=int, default=0)
    cl.add_argument("--device", default="auto")
    cl.add_argument("--out", help="default: checkpoints/classifier-<data>.pt")
    cl.set_defaults(func=cmd_classifier)
    pr = sub.add_parser("presets", help="list the named presets")
    pr.set_defaults(func=cmd_presets)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    warnings.simplefilter("always", ConfigWarning)
    warnings.formatwarning = lambda msg, cat, *a, **k: f"note: {msg}\n"
    try:
        return args.func(args)
    except (ConfigError, CheckpointError, DataError, UserError, DivergenceError, ClusterError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
