"""One prepared training run on a lent accelerator (the workplace's `device` tool), end to end in one command.

It continues the shipped reader (`qa/data/reader`) in several variants at once on one GPU, keeps the variant whose
dev-best checkpoint has the best mean F1 over the same dev samples (SQuAD v1.1 dev and COVID-QA dev, as
`qa train-reader` selects), scores that one on both whole dev files, and writes it under OUT in pieces that the
tool brings back (files of at most 16 MiB, at most 8 of them):

    OUT/model.safetensors.part-0..2   the kept reader's fp16 weights, split (`cat` them back together)
    OUT/bundle.tar.gz                 its config, tokenizer and training.json, every variant's report and log
    OUT/summary.json                  the variants' dev curves, the choice, the whole-dev scores, timings

The device machine has torch and transformers but neither this project's other dependencies nor `../shared`, so
the data travels gzipped in `.devdata/` (ignored by git; made by `--pack`) and is unpacked to where `qa
train-reader` reads it. Its tokenizers (0.23.2 on 2026-12-04) cuts long contexts short
(`qa.readers.transformers_reader.check_overflow_windows`, which this run checks first): carry a tokenizers>=0.23.3
wheel in `.whl/` (ignored) and install it before the run (the command below).

Every phase has a deadline inside the command's limit: a variant still training at `--train-deadline` is stopped
(its dev-best so far still competes) and the weights are written out before the whole-dev scoring starts.
After the run, `--unpack DIR` here joins the parts into a reader folder.

    python3 scripts/train_reader_device.py --pack                       # here, once: gzip the data into .devdata
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux2014_x86_64 -d .whl tokenizers==0.23.3         # here, once
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site \
        && python3 scripts/train_reader_device.py --out $OUT              # there (device tool, carry .devdata .whl)
    python3 scripts/train_reader_device.py --unpack FILES_AT --into var/reader-gpu   # here, afterwards
    .venv/bin/python scripts/train_reader_device.py --out var/device-rehearsal --tiny   # a CPU rehearsal
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("PYTHONUNBUFFERED", "1")

PACKED = ROOT / ".devdata"
# Relative to the repository root, as every command here reads it; elsewhere only where that folder's parent
# cannot be written (the run then re-executes itself with READER_BENCHMARKS set, for its subprocesses too).
SHARED = Path(os.environ.get("READER_BENCHMARKS", "../shared/benchmarks"))
DATA = {  # file -> folder under SHARED
    "train-v1.1.json": "squad",
    "dev-v1.1.json": "squad",
    "covid-qa-train.json": "covid_qa",
    "covid-qa-dev.json": "covid_qa",
}
SQUAD_TRAIN = SHARED / "squad/train-v1.1.json"
COVID_TRAIN = SHARED / "covid_qa/covid-qa-train.json"
DEV = (SHARED / "squad/dev-v1.1.json", SHARED / "covid_qa/covid-qa-dev.json")

PART_BYTES = 15 * 2**20  # the tool brings back files of at most 16 MiB
SCORE_SHARDS = 4  # whole-dev scoring split over processes: one process reads ~10 ms a question, mostly CPU

# Every variant continues the shipped reader with the lineage's settings (MODEL_CARD.md: batch 32, windows of 256
# tokens, stride 64, one window without the answer per answer window, a third more questions made unanswerable,
# bf16 autocast); they differ in data mix, entity-swap share and learning rate. One seed for all: the same dev
# samples. The next step they test: entity-swap unanswerable questions (`--swap-ratio`) at SQuAD's scale, which
# the CPU could afford only on COVID-QA train (run 10: calibration mean 0.7006 against 0.6880 without them).
COMMON = {
    "base_model": "qa/data/reader",
    "batch_size": 32,
    "max_length": 256,
    "stride": 64,
    "negative_ratio": 1.0,
    "unanswerable_ratio": 0.33,
    "seed": 20,
    "precision": "bf16",
    "dev_sample": 1000,
    "eval_max_answer_tokens": 64,
    "checkpoint_every": 10**9,  # resuming is moot inside one command; a checkpoint costs ~0.5 s on this model
    "threads": 4,
    "final_eval": False,
}
VARIANTS = {
    # one more epoch of SQuAD with COVID-QA train, half as many swapped questions again as answerable ones
    "mix1-swap": {"train": [SQUAD_TRAIN, COVID_TRAIN], "epochs": 1, "lr": 3e-5, "swap_ratio": 0.5, "eval_every": 2000},
    # the same with COVID-QA train seen three times an epoch: more weight on the biomedical papers
    "mix1-swap-covid3": {
        "train": [SQUAD_TRAIN, COVID_TRAIN, COVID_TRAIN, COVID_TRAIN],
        "epochs": 1,
        "lr": 3e-5,
        "swap_ratio": 0.5,
        "eval_every": 2000,
    },
    # as many swapped questions as answerable ones: the share run 10 used on COVID-QA train
    "mix1-swap1": {"train": [SQUAD_TRAIN, COVID_TRAIN], "epochs": 1, "lr": 3e-5, "swap_ratio": 1.0, "eval_every": 2000},
}


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- data -----------------------------------------------------------------------------------------------------


def pack() -> None:
    PACKED.mkdir(exist_ok=True)
    for name, folder in DATA.items():
        src = SHARED / folder / name
        with open(src, "rb") as f, gzip.open(PACKED / f"{name}.gz", "wb", compresslevel=9) as g:
            shutil.copyfileobj(f, g)
    say(f"packed {len(DATA)} files into {PACKED}: {sum(p.stat().st_size for p in PACKED.iterdir()) / 2**20:.1f} MiB")


def unpack_data() -> None:
    try:
        SHARED.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        say(f"cannot write {SHARED} ({err}): using /tmp/shared/benchmarks")
        os.environ["READER_BENCHMARKS"] = "/tmp/shared/benchmarks"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    for name, folder in DATA.items():
        target = SHARED / folder / name
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(PACKED / f"{name}.gz", "rb") as g, open(target, "wb") as f:
            shutil.copyfileobj(g, f)
    say("data in place under " + str(SHARED))


def make_tiny(work: Path) -> dict[str, Path]:
    """Small SQuAD-format copies (a few articles each) for a rehearsal of the whole command on CPU."""
    out = {}
    for path, articles in ((SQUAD_TRAIN, 2), (COVID_TRAIN, 1), *((p, 1) for p in DEV)):
        target = work / "tiny" / path.parent.name / path.name
        out[str(path)] = target
        if target.exists():  # made once by the orchestrator, read by its subprocesses
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        data["data"] = data["data"][:articles]
        for article in data["data"]:
            article["paragraphs"] = article["paragraphs"][:3]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(data), encoding="utf-8")
    return out


# --- one variant (a subprocess) ---------------------------------------------------------------------------------


def train_variant(name: str, work: Path, tiny: bool) -> None:
    from qa.readers.precision import Precision
    from qa.training.trainer import TrainConfig, run_training

    spec = dict(VARIANTS[name])
    paths = {str(p): p for p in (SQUAD_TRAIN, COVID_TRAIN, *DEV)}
    if tiny:
        paths = make_tiny(work)
    options = {**COMMON, **{k: v for k, v in spec.items() if k != "train"}}
    options["precision"] = Precision.parse(options["precision"])
    if tiny:
        options.update(max_steps=4, eval_every=2, dev_sample=3)
    config = TrainConfig(
        train_paths=tuple(paths[str(p)] for p in spec["train"]),
        dev_paths=tuple(paths[str(p)] for p in DEV),
        output_dir=work / name,
        **options,
    )
    result = run_training(config, say=lambda m: say(f"{name}: {m}"), progress=False)
    say(f"{name}: done, best step {result.best_step}, wall {result.wall_time_s:.0f} s")


def score_shard(folder: Path, shard: int, shards: int, out: Path, tiny: bool, work: Path) -> None:
    """EM/F1 sums of the saved reader over every `shards`-th question of each whole dev file, read with the
    settings its run evaluated with."""
    from qa.training.data import load_squad
    from qa.training.trainer import score_saved_reader

    evaluation = json.loads((folder / "training.json").read_text())["evaluation"]
    paths = make_tiny(work) if tiny else {str(p): p for p in DEV}
    dev_sets = {str(paths[str(p)]): load_squad(paths[str(p)])[shard::shards] for p in DEV}
    settings = {k: evaluation[k] for k in ("max_answer_tokens", "max_length", "stride", "precision")}
    results = score_saved_reader(folder, dev_sets, **settings)
    sums = {
        n: {"em": r.exact_match * r.questions, "f1": r.f1 * r.questions, "n": r.questions} for n, r in results.items()
    }
    out.write_text(json.dumps(sums))


# --- the orchestration ----------------------------------------------------------------------------------------


def _spawn(args: list[str], log: Path) -> subprocess.Popen:
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _wait(procs: dict[str, subprocess.Popen], deadline: float) -> dict[str, str]:
    """Wait for every process until `deadline` (monotonic); stop the rest. Returns name -> how it ended."""
    ended: dict[str, str] = {}
    while len(ended) < len(procs):
        for name, proc in procs.items():
            if name not in ended and proc.poll() is not None:
                ended[name] = f"exit {proc.returncode}"
                say(f"{name} ended: {ended[name]}")
        if time.monotonic() > deadline:
            for name, proc in procs.items():
                if name not in ended:
                    os.killpg(proc.pid, signal.SIGTERM)
            time.sleep(5)
            for name, proc in procs.items():
                if name not in ended:
                    if proc.poll() is None:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()
                    ended[name] = "stopped at the deadline"
                    say(f"{name}: stopped at the deadline")
            break
        time.sleep(2)
    return ended


def _best(folder: Path) -> dict | None:
    """The variant's dev-best evaluation, if its weights and report are complete."""
    try:
        report = json.loads((folder / "training.json").read_text())
    except (OSError, ValueError):
        return None
    if not (folder / "model.safetensors").exists() or not report.get("evals"):
        return None
    best = max(report["evals"], key=lambda e: e["mean_f1"])
    return {**best, "best_step": report["best_step"], "steps": report["steps"], "speed": report["speed"]}


def _loads(folder: Path) -> bool:
    try:
        from transformers import AutoModelForQuestionAnswering

        AutoModelForQuestionAnswering.from_pretrained(folder, local_files_only=True)
        return True
    except Exception as err:  # a weights file cut short by the deadline's stop: this variant cannot compete
        say(f"{folder} does not load ({type(err).__name__}: {err})")
        return False


def _write_out(ship: Path, work: Path, out: Path, summary: dict) -> None:
    """The weights in parts of PART_BYTES, everything else in one archive, and the summary."""
    for old in out.glob("model.safetensors.part-*"):
        old.unlink()
    data = (ship / "model.safetensors").read_bytes()
    for i in range(0, len(data), PART_BYTES):
        (out / f"model.safetensors.part-{i // PART_BYTES}").write_bytes(data[i : i + PART_BYTES])
    with tarfile.open(out / "bundle.tar.gz", "w:gz") as tar:
        for f in sorted(ship.iterdir()):
            if f.name != "model.safetensors":
                tar.add(f, arcname=f"reader/{f.name}")
        for name in VARIANTS:
            for f in (work / name / "training.json", work / f"{name}.log"):
                if f.exists():
                    tar.add(f, arcname=f"variants/{name}/{f.name}")
        for f in sorted(work.glob("score-*.log")):
            tar.add(f, arcname=f"scoring/{f.name}")
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")


def orchestrate(out: Path, work: Path, train_deadline: float, score_deadline: float, tiny: bool) -> int:
    t0 = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    if tiny:
        make_tiny(work)
    else:
        unpack_data()
    import torch
    import transformers

    try:  # the device image of 2026-12 has tokenizers 0.23.2, which drops overflow windows: carry 0.23.3 (.whl)
        from transformers import AutoTokenizer

        from qa.readers.transformers_reader import check_overflow_windows

        check_overflow_windows(AutoTokenizer.from_pretrained(COMMON["base_model"], local_files_only=True))
    except Exception as err:
        say(f"refusing to train: {err}")
        return 2

    summary: dict = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "variants": {},
        "common": dict(COMMON),
    }
    say(f"device {summary['device']}, {summary['versions']}")

    extra = ["--tiny"] if tiny else []
    procs = {n: _spawn(["--variant", n, "--work", str(work), *extra], work / f"{n}.log") for n in VARIANTS}
    ended = _wait(procs, t0 + train_deadline)
    summary["train_seconds"] = round(time.monotonic() - t0, 1)

    for name in VARIANTS:
        best = _best(work / name)
        ok = best is not None and _loads(work / name)
        summary["variants"][name] = {
            "spec": {k: [str(p) for p in v] if k == "train" else v for k, v in VARIANTS[name].items()},
            "ended": ended.get(name),
            "best": best if ok else None,
        }
        say(f"{name}: {ended.get(name)}; dev-best {best and {k: best.get(k) for k in ('step', 'mean_f1')}}")
    ranked = [n for n in VARIANTS if summary["variants"][n]["best"]]
    if not ranked:
        (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        say("no variant left usable weights")
        return 1
    kept = max(ranked, key=lambda n: summary["variants"][n]["best"]["mean_f1"])
    summary["kept"] = kept
    say(f"kept {kept} (best dev-sample mean F1)")

    from qa.training.trainer import export_compact

    ship = export_compact(work / kept, work / "ship", half=True)
    _write_out(ship, work, out, summary)
    say("weights written; scoring on the whole dev files")

    scorers = {
        f"score-{i}": _spawn(
            ["--score", str(work / kept), "--shard", f"{i}/{SCORE_SHARDS}", "--work", str(work), *extra],
            work / f"score-{i}.log",
        )
        for i in range(SCORE_SHARDS)
    }
    _wait(scorers, t0 + score_deadline)
    totals: dict[str, dict[str, float]] = {}
    for i in range(SCORE_SHARDS):
        f = work / f"score-{i}.json"
        if not f.exists():
            say(f"shard {i} did not finish: no whole-dev scores")
            totals = {}
            break
        for n, s in json.loads(f.read_text()).items():
            t = totals.setdefault(n, {"em": 0.0, "f1": 0.0, "n": 0})
            for k in t:
                t[k] += s[k]
    if totals:
        final = {"step": summary["variants"][kept]["best"]["best_step"]}
        final |= {
            n: {"exact_match": round(t["em"] / t["n"], 4), "f1": round(t["f1"] / t["n"], 4), "questions": int(t["n"])}
            for n, t in totals.items()
        }
        summary["final_dev"] = final
        report = json.loads((ship / "training.json").read_text())
        report["final_dev"] = final
        (ship / "training.json").write_text(json.dumps(report, indent=2) + "\n")
        say(f"whole dev: {final}")
    summary["seconds"] = round(time.monotonic() - t0, 1)
    _write_out(ship, work, out, summary)
    print(json.dumps(summary, indent=1))
    return 0


def unpack_result(files_at: Path, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(files_at / "bundle.tar.gz") as tar:
        tar.extractall(into / "bundle", filter="data")
    for f in (into / "bundle" / "reader").iterdir():
        shutil.copy2(f, into / f.name)
    parts = sorted(files_at.glob("model.safetensors.part-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    with open(into / "model.safetensors", "wb") as w:
        for p in parts:
            w.write(p.read_bytes())
    shutil.copy2(files_at / "summary.json", into / "bundle" / "summary.json")
    say(f"reader in {into} ({len(parts)} parts joined)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="Folder whose files come back (the device tool's $OUT).")
    ap.add_argument("--work", type=Path, default=Path("/tmp/reader-device"), help="Scratch folder.")
    ap.add_argument("--train-deadline", type=float, default=440.0, help="Seconds from the start: stop training.")
    ap.add_argument("--score-deadline", type=float, default=560.0, help="Seconds from the start: stop scoring.")
    ap.add_argument("--tiny", action="store_true", help="Rehearse on a few articles, a few steps (CPU).")
    ap.add_argument("--pack", action="store_true", help="Gzip the data into .devdata (here, before the run).")
    ap.add_argument("--unpack", type=Path, help="The tool's files_at: join the parts into --into.")
    ap.add_argument("--into", type=Path, default=Path("var/reader-gpu"))
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--score", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--shard", default="0/1", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.chdir(ROOT)
    if args.pack:
        pack()
        return 0
    if args.unpack:
        unpack_result(args.unpack, args.into)
        return 0
    if args.variant:
        train_variant(args.variant, args.work, args.tiny)
        return 0
    if args.score:
        i, n = (int(x) for x in args.shard.split("/"))
        score_shard(args.score, i, n, args.work / f"score-{i}.json", args.tiny, args.work)
        return 0
    if not args.out:
        ap.error("--out is needed")
    return orchestrate(args.out, args.work, args.train_deadline, args.score_deadline, args.tiny)


if __name__ == "__main__":
    sys.exit(main())
