"""The README's results table and docs/reader.md, rendered from the JSON in docs/results/ (never retyped).

    python -m eval.results_doc          # rewrite both from docs/results/*.json
    python -m eval.results_doc --check  # exit 1 when either is out of date (the test suite runs this check)

Inputs (each written by a command, named in docs/reader.md): `calibration-heuristic.json` and
`calibration-trained.json` (`qa calibrate --summary`), `oracle.json` (`qa eval-reader` / `qa eval --oracle`
lines), `latency.json` (`qa bench latency`), `reader-peers.json` (`qa bench reader-peers`),
`reader-precision-*.json` (`python -m eval.bench.reader_variants`), `unreachable-*.json`
(`python -m eval.bench.unreachable`), `top-k.json` (`python -m eval.bench.top_k`), `coverage-separation.json`
(`python -m eval.bench.coverage_separation`), `windows.json` (`python -m eval.bench.windows`), and the shipped
model's `qa/data/reader/training.json`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
README = ROOT / "README.md"
READER_DOC = ROOT / "docs" / "reader.md"
TRAINING = ROOT / "qa" / "data" / "reader" / "training.json"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
PRECISION_RESULTS = ("reader-precision-seed_dev.json", "reader-precision-covid-qa-dev.json")
"""`eval.bench.reader_variants` reports: the default (auto) precision against fp32, on each gold set."""
UNREACHABLE_RESULTS = ("unreachable-seed_dev.json", "unreachable-covid-qa-dev.json")
"""`eval.bench.unreachable` reports: reading every passage against skipping unreachable documents."""

SET_NAMES = {
    "seed_dev.jsonl:retrieved": "seed_dev (built-in abstracts, 45 q, 2 unanswerable)",
    "seed_dev.jsonl:without-gold": "seed_dev, gold abstract removed (all unanswerable)",
    "covid-qa-dev.json:retrieved": "COVID-QA dev (papers, 203 q)",
    "covid-qa-dev.json:without-gold": "COVID-QA dev, gold paper removed (all unanswerable)",
    "dev-v2.0.json:oracle": "SQuAD v2.0 dev sample, own paragraph (half unanswerable)",
}


def _load(name: str) -> Any:
    path = RESULTS / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _f(x: Any, digits: int = 3) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _short_set_name(name: str) -> str:
    """A calibration set's name for a table column: its description without the parenthesis."""
    return SET_NAMES.get(name, name).split(" (")[0]


def _setting(row: dict[str, Any]) -> str:
    hw = row.get("heuristic_weight")
    mix = f"heuristic share {hw}, " if hw is not None else ""
    coverage = f", coverage exponent {row['coverage_exponent']}" if "coverage_exponent" in row else ""
    return f"{mix}threshold {row['threshold']}, retrieval weight {row['retrieval_weight']}{coverage}"


def readers(heuristic: dict[str, Any] | None, trained: dict[str, Any] | None) -> list[tuple[str, dict[str, Any]]]:
    """(label, chosen row) for the heuristic reader, the trained reader and the combination."""
    out = []
    if heuristic:
        out.append(
            ("heuristic", heuristic["best_reader_alone"] if "best_reader_alone" in heuristic else heuristic["best"])
        )
    if trained:
        out.append(("trained (default)", trained["best_reader_alone"]))
        mix = trained.get("best_combined") or (trained["best"] if trained["best"].get("heuristic_weight") else None)
        if mix:
            out.append((f"combined (heuristic share {mix['heuristic_weight']})", mix))
    return out


def main_table(heuristic: dict[str, Any] | None, trained: dict[str, Any] | None) -> list[str]:
    chosen = readers(heuristic, trained)
    if not chosen:
        return ["(no calibration results yet)"]
    lines = [
        _row(
            [
                "dev set (F1, SQuAD 2.0 scoring; abstaining on an unanswerable question scores 1)",
                *[c[0] for c in chosen],
            ]
        ),
        "|---|" + "---:|" * len(chosen),
    ]
    names = list(chosen[0][1]["sets"])
    for name in names:
        cells = []
        for _, row in chosen:
            s = row["sets"].get(name)
            cells.append(_f(s["f1"]) if s else "")
        lines.append(_row([SET_NAMES.get(name, name), *cells]))
    lines.append(_row(["**mean over the dev sets**", *[f"**{_f(r['mean_f1'])}**" for _, r in chosen]]))
    return lines


def oracle_table(oracle: list[dict[str, Any]] | None) -> list[str]:
    if not oracle:
        return []
    lines = ["", _row(["set (no abstention)", "reader", "questions", "EM", "F1"]), "|---|---|---:|---:|---:|"]
    for r in oracle:
        lines.append(_row([r["set"], r["reader"], r["questions"], _f(r["exact_match"]), _f(r["f1"])]))
    return lines


def retrieval_table(retrieval: list[dict[str, Any]] | None) -> list[str]:
    """Document retrieval as `/ask` ranks (the harness uses the served retriever: same query expansion, fusion)."""
    if not retrieval:
        return []
    head = ["gold set (retrieval as /ask serves it, hybrid)", "questions", "R@1", "R@5", "MRR@10", "nDCG@10"]
    lines = ["", _row(head), "|---|---:|---:|---:|---:|---:|"]
    for r in retrieval:
        m = r["retrieval"]
        cells = [r["set"], r["questions"], _f(m["recall@1"]), _f(m["recall@5"]), _f(m["mrr@10"]), _f(m["ndcg@10"])]
        lines.append(_row(cells))
    return lines


def training_line(training: dict[str, Any] | None) -> str:
    if not training:
        return ""
    from qa.training.model_card import training_stages

    stages = training_stages(training)
    files: dict[str, int] = {}
    for stage in stages:
        files |= {Path(t["path"]).name: t["questions"] for t in stage["data"]["train"]}
    data = ", ".join(f"{name} ({n:,} q)" for name, n in files.items())
    # Each run starts from the dev-best weights of the one before (or the average its report records): the
    # shipped weights have seen the sum of the kept (dev-best) steps of every run, not every step that was run.
    kept_by_run = [s.get("best_step") or s["steps"]["done"] for s in stages]
    runs = " + ".join(f"{k:,}" for k in kept_by_run)
    averaged = [i for i, s in enumerate(stages[:-1], start=1) if s.get("weight_average")]
    sizes = {len(stages[i - 1]["weight_average"]["sources"]) for i in averaged}
    passed_on = (
        f"; {run_numbers(averaged)} passed on "
        + ("an average" if len(averaged) == 1 else "averages")
        + (f" of {sizes.pop()} checkpoints" if len(sizes) == 1 else " of checkpoints")
        if averaged
        else ""
    )
    return (
        f"Trained reader: all-MiniLM-L6-v2 + QA head, {data}, batches of "
        f"{training['hyperparameters']['batch_size']} windows; {len(stages)} run(s), each from the one before's "
        f"dev-best weights{passed_on}: {runs} steps kept, {epochs_by_data(stages)}; {hardware_by_device(stages)}"
        + averaged_clause(training)
        + "."
    )


def run_numbers(numbers: list[int]) -> str:
    """1, 2, 3, 5 -> 'runs 1-3, 5'; 4 -> 'run 4'."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)
    return f"run {text}" if len(numbers) == 1 else f"runs {text}"


def hardware_by_device(stages: list[dict[str, Any]]) -> str:
    """Wall time on each kind of hardware the runs used, with the threads and speed of its last run there."""
    by_device: dict[str, list[int]] = {}
    for i, stage in enumerate(stages, start=1):
        by_device.setdefault(stage.get("device", "cpu"), []).append(i)
    parts = []
    for device, numbers in by_device.items():
        hours = sum(stages[i - 1]["wall_time_s"] for i in numbers) / 3600
        last = stages[numbers[-1] - 1]
        which = "" if len(by_device) == 1 else f"{run_numbers(numbers)}, "
        lead = "last run " if len(numbers) > 1 else ""
        speed = last.get("speed", {}).get("windows_per_s", "?")
        parts.append(f"{hours:.1f} h on {device} ({which}{last['threads']} threads, {lead}{speed} windows/s)")
    return " and ".join(parts)


def epochs_by_data(stages: list[dict[str, Any]]) -> str:
    """Epochs seen (kept steps over each run's steps per epoch), summed over consecutive runs on the same data."""
    groups: list[list[Any]] = []  # [training file names, epochs, first run, last run]
    for i, stage in enumerate(stages, start=1):
        names = " + ".join(
            [Path(t["path"]).name for t in stage["data"]["train"]]
            + [f"{r['drawn']:,} replayed questions of {Path(r['path']).name}" for r in stage["data"].get("replay", [])]
        )
        epochs = (stage.get("best_step") or stage["steps"]["done"]) / stage["steps"]["per_epoch"]
        if groups and groups[-1][0] == names:
            groups[-1][1] += epochs
            groups[-1][3] = i
        else:
            groups.append([names, epochs, i, i])
    runs = [run_numbers(list(range(a, b + 1))) for _, _, a, b in groups]
    return ", then ".join(f"{e:.2f} epochs of {n} ({r})" for (n, e, _, _), r in zip(groups, runs, strict=True))


def _sibling_run(run: dict[str, Any] | None) -> str:
    """A source trained by a run of its own (not in the lineage above): its data, time and hardware."""
    if not run:
        return ""
    data = " + ".join(Path(t["path"]).name for t in run["data"]["train"])
    return f"; its own run: {data}, {run['wall_time_s'] / 3600:.1f} h on {run.get('device', 'cpu')}"


def averaged_clause(training: dict[str, Any]) -> str:
    """What the shipped weights average, when they are a weight average (`qa average-readers`)."""
    average = training.get("weight_average")
    if not average:
        return ""
    parts = [f"{s['source']} ({s['kind']}, step {s['step']}{_sibling_run(s.get('run'))})" for s in average["sources"]]
    where = "folders of the machine that trained them; qa/data/reader/MODEL_CARD.md gives the command that makes each"
    return f"; the shipped weights are the {average['rule']} average of {len(parts)} ({where}): " + ", ".join(parts)


def windows_row(report: dict[str, Any] | None) -> list[str]:
    """The builder on all of SQuAD train against one tokenizer call per question (`eval.bench.windows`)."""
    if not report:
        return []
    b, r = report["batched"], report["reference"]
    return [
        f"| building windows, all of {report['file']} (`{report['command']}`) | 50-100 questions/s; one "
        f"tokenizer call per question, run here on its first {r['questions']:,}: {r['questions_per_s']:,.0f} "
        f"questions/s | {b['questions_per_s']:,.0f} questions/s ({b['questions']:,} questions, "
        f"{b['windows_cut']:,} windows, in {b['seconds']} s); on the same {r['questions']:,}: "
        f"{r['batched_questions_per_s']:,.0f} questions/s ({r['speedup']}x), the same windows and labels on "
        f"{r['same_windows']:,} of {r['windows']:,} |"
    ]


def training_section(training: dict[str, Any] | None, windows: dict[str, Any] | None = None) -> list[str]:
    """How the run was made cheaper, from training.json and `eval.bench.windows`; the 'before' figures are issue
    11's measurements of the previous `qa train-reader` (windows padded to 256 tokens, one tokenizer call per
    question)."""
    if not training:
        return []
    win, speed = training["windows"], training.get("speed", {})
    questions, seconds = win["examples"], max(win.get("seconds", 1), 1e-9)
    return [
        "## Training cost",
        "",
        "| | before (issue 11's measurement) | now |",
        "|---|---:|---:|",
        *windows_row(windows),
        f"| building windows, the shipped run's own data (training.json) | | {questions / seconds:,.0f} "
        f"questions/s, {win.get('windows', 0) / seconds:,.0f} windows/s ({questions:,} questions, "
        f"{win.get('windows', 0):,} windows, in {win.get('seconds', '?')} s) |",
        f"| training step, bf16, 2 cores | 6.8 windows/s (32 x 256 padded tokens in 4.7 s) | "
        f"{speed.get('windows_per_s', '?')} windows/s, {speed.get('tokens_per_s', '?')} real tokens/s |",
        "",
        f"Windows are padded to the longest of their batch (mean window {win.get('mean_length', '?')} tokens) and "
        "batched by length (megabatches of 50 batches, sorted), never longer than the 256-token windows the "
        "service reads (question + one 128-token chunk). The training speed is measured over the whole run, on a "
        "machine shared with other work (evaluations, tests), so it is a lower bound. The shipped run's data are "
        "COVID-QA papers (tens of windows each, most of them cut and dropped), so its questions/s is not "
        "comparable with SQuAD's.",
        "",
    ]


def latency_line(latency: dict[str, Any] | None, peers: dict[str, Any] | None) -> str:
    """Reader latency from `qa bench reader-peers` (and `/ask` from `qa bench latency` when present)."""
    parts = []
    if peers:
        for r in peers["results"]:
            if r["threads"] != 1:
                continue  # the 2-thread pass of this run was measured beside other work: see the JSON
            agree = r["agreement"]
            precision = f" ({peers['ours']['precision']})" if peers["ours"].get("precision") else ""
            parts.append(
                f"Reader latency on the same {peers['passages_per_question']['p50']:.0f} passages per question "
                f"({peers['questions']} seed_dev questions, 1 thread, load {peers['machine']['load_before'][0]}-"
                f"{peers['machine']['load_after'][0]}): ours{precision} p50 {r['ours_ms']['p50']:.0f} ms / p95 "
                f"{r['ours_ms']['p95']:.0f} ms, Haystack's ExtractiveReader on the same model folder p50 "
                f"{r['haystack_ms']['p50']:.0f} / p95 {r['haystack_ms']['p95']:.0f} ms (ratio "
                f"{r['ours_over_theirs']['p50']}); same best span {agree['same_best_span']}/{agree['n']} "
                f"(`{peers['command']}`, before calibration: ours abstained on {agree['ours_abstained']})."
            )
    for name in PRECISION_RESULTS:
        parts.append(precision_line(_load(name)))
    if latency:
        parts.append(ask_latency_line(latency))
    return " ".join(p for p in parts if p)


def coverage_section(report: dict[str, Any] | None) -> list[str]:
    """How well each weighting of question coverage tells the gold document from the best other one."""
    if not report:
        return []
    weightings = list(report["sets"][0]["weightings"])
    lines = [
        "### Question coverage: gold document against the best-ranked other one",
        "",
        "AUC (ties half) and gold documents under 0.8 coverage, per weighting `everyday:unseen` (the shares of "
        "IDF an everyday word weighs when the corpus uses it and when it does not; `1:1` is plain IDF):",
        "",
        _row(["set", "questions", *weightings]),
        "|---|---:|" + "---:|" * len(weightings),
    ]
    for s in report["sets"]:
        cells = [f"{_f(w['auc'])} ({w['gold_under_0.8']})" for w in s["weightings"].values()]
        lines.append(_row([Path(s["gold"]).name, s["questions"], *cells]))
    return [*lines, "", f"`{report['command']}`", ""]


def top_k_section(report: dict[str, Any] | None) -> list[str]:
    """Mean F1 and wrong answers by the number of passages read, each at its own best setting."""
    if not report:
        return []
    names = list(report["rows"][0]["sets"])
    lines = [
        "### Passages read (top_k), each at its own calibrated setting",
        "",
        "F1 (wrong answers) per set, measured at commit "
        f"{report.get('code', {}).get('git_commit', '?')} ({report.get('created_at', '?')[:10]}) with that "
        "commit's reader. Reading time is measured by the latency benchmarks, not here (the calibration runs "
        "share the machine with one another):",
        "",
        _row(["top_k", "mean F1", "setting", *[_short_set_name(n) for n in names], "wrong"]),
        "|---:|---:|---|" + "---:|" * (len(names) + 1),
    ]
    for r in report["rows"]:
        cells = [f"{_f(r['sets'][n]['f1'])} ({r['sets'][n]['wrong']})" for n in names]
        lines.append(_row([r["top_k"], _f(r["mean_f1"], 4), _setting(r), *cells, r["wrong"]]))
    return [*lines, "", f"`{report['command']}`", ""]


def precision_line(variants: dict[str, Any] | None) -> str:
    """The reader in fp32 against the default precision (`eval.bench.reader_variants`): speed and agreement."""
    if not variants or len(variants["results"]) < 2:
        return ""
    ref, *others = variants["results"]
    machine = variants["machine"]
    parts = []
    for r in others:
        v = r["vs_reference"]
        parts.append(
            f"{r['variant']} ({r['active_precision']}) p50 {r['ms']['p50']:.0f} ms against {ref['ms']['p50']:.0f} ms "
            f"({v['p50_speed_up']}x), the same best span on {v['same_best_span']}/{v['questions']} and the same "
            f"answer or abstention from the pipeline on {v['same_final_answer_or_abstention']}/{v['questions']}"
        )
    return (
        f"Reader precision ({ref['variant']} the reference; {Path(variants['gold']).name}, "
        f"{variants['threads']} thread, load {machine['load_before'][0]}-{machine['load_after'][0]}): "
        + "; ".join(parts)
        + f" (`{variants['command']}`)."
    )


def unreachable_line(report: dict[str, Any] | None) -> str:
    """Reading every retrieved passage against skipping the documents that cannot reach the threshold
    (`eval.bench.unreachable`): speed, passages read, and how often the answers are the same."""
    if not report:
        return ""
    full, skip = report["results"]
    machine, n = report["machine"], report["questions"]
    return (
        f"Skipping unreachable documents ({Path(report['gold']).name}, {n} questions, {report['threads']} thread, "
        f"load {machine['load_before'][0]}-{machine['load_after'][0]}): reading p50 {skip['ms']['p50']:.0f} ms "
        f"against {full['ms']['p50']:.0f} ms ({report['p50_speed_up']}x; mean {report['mean_speed_up']}x), "
        f"{skip['passages_read_mean']} passages read per question against {full['passages_read_mean']}, none for "
        f"{skip['nothing_read']}; the same first answer or abstention on {report['same_first_answer_or_abstention']}"
        f"/{n}, the same listed answers to 6 decimals on {report['same_answers']}/{n} "
        f"(`{report['command']}`)."
    )


def ask_latency_line(latency: dict[str, Any]) -> str:
    """`/ask` end to end with the shipped defaults (the default embedding backend, the default reader), from
    `qa bench latency`'s JSON: one client's p50/p95, several clients' requests/s, and the reader's share."""
    from qa.settings import Settings

    backend = Settings.model_fields["embedding_backend"].default.value
    row = latency["backends"].get(backend)
    if row is None:
        return ""
    seq, conc = row["sequential"], row.get("concurrent") or {}
    machine = latency["machine"]
    clients = (
        f", {conc['throughput_rps']} requests/s with {conc['clients']} clients" if conc.get("throughput_rps") else ""
    )
    return (
        f"`/ask` on loopback, default configuration ({backend} embedder, trained reader, built-in corpus, "
        f"{machine['cpus']} CPUs, load {machine['load_before'][0]}-{machine['load_after'][0]}): p50 "
        f"{seq['latency_ms']['p50']:.0f} ms / p95 {seq['latency_ms']['p95']:.0f} ms for one client{clients}; "
        f"reading is {seq['server_timing_ms']['read']:.0f} ms of the server's {seq['server_timing_ms']['total']:.0f} "
        f"(`{latency['command']}`)."
    )


def readme_block() -> str:
    heuristic, trained = _load("calibration-heuristic.json"), _load("calibration-trained.json")
    training = json.loads(TRAINING.read_text(encoding="utf-8")) if TRAINING.is_file() else None
    lines = main_table(heuristic, trained)
    lines += oracle_table(_load("oracle.json"))
    lines += retrieval_table(_load("retrieval.json"))
    extra = [training_line(training), latency_line(_load("latency.json"), _load("reader-peers.json"))]
    lines += ["", *[e for e in extra if e]]
    return "\n".join([BEGIN, *lines, END])


def listing_section(trained: dict[str, Any] | None) -> list[str]:
    """The secondary ratio of the trained reader: every ratio tried, and the listing at the chosen one."""
    chosen = (trained or {}).get("secondary_reader_alone")
    curve = (trained or {}).get("listing_reader_alone")
    if not chosen or not curve:
        return []
    names = list(chosen["sets"])
    lines = [
        f"### Further answers, trained reader: secondary ratio {chosen['secondary_ratio']}",
        "",
        f"An answer after the first is listed only when its score reaches this share of the first's (up to "
        f"{trained.get('max_answers')} answers). The ratio is chosen after the threshold, by the listed answers' "
        "mean F1 (per question, the mean F1 of what is listed; an unanswerable question scores 1 when nothing is "
        "listed), so it changes neither the first answer nor abstention.",
        "",
        _row(["secondary ratio", *[_short_set_name(n) for n in names], "mean list F1"]),
        "|---:|" + "---:|" * (len(names) + 1),
    ]
    for r in curve:
        lines.append(_row([r["secondary_ratio"], *[_f(r["sets"][n]["list_f1"]) for n in names], _f(r["mean_list_f1"])]))
    lines += [
        "",
        _row(["dev set, at the chosen ratio", "answers listed per answered question", "further answers", "their F1"]),
        "|---|---:|---:|---:|",
    ]
    for n in names:
        s = chosen["sets"][n]
        lines.append(
            _row([SET_NAMES.get(n, n), _f(s["answers_per_answered"]), s["secondary_listed"], _f(s["secondary_f1"])])
        )
    return [*lines, ""]


def reader_doc() -> str:
    heuristic, trained = _load("calibration-heuristic.json"), _load("calibration-trained.json")
    lines = [
        "# The reader: results in full",
        "",
        "Generated by `python -m eval.results_doc` from docs/results/*.json; do not edit by hand.",
        "",
        "Every setting (threshold, retrieval weight, heuristic share) is chosen by `qa calibrate` as the best "
        "mean F1 over all the dev sets below at once, never on one set. `retrieved` asks as the service does; "
        "`without-gold` retrieves with the question's gold documents removed (a question the corpus cannot "
        "answer: the right outcome is no answer); `oracle` reads the question's own paragraph. Wrong answers are "
        "answers with F1 0 and any answer to an unanswerable question.",
        "",
    ]
    for label, row in readers(heuristic, trained):
        lines += [f"## {label}: {_setting(row)}", ""]
        lines.append(
            _row(
                [
                    "dev set",
                    "questions",
                    "unanswerable",
                    "EM",
                    "F1",
                    "F1 answerable",
                    "no-answer P",
                    "no-answer R",
                    "wrong answers",
                ]
            )
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, s in row["sets"].items():
            lines.append(
                _row(
                    [
                        SET_NAMES.get(name, name),
                        s["questions"],
                        s["unanswerable"],
                        _f(s["em"]),
                        _f(s["f1"]),
                        _f(s["has_answer_f1"]),
                        _f(s["no_answer_precision"]),
                        _f(s["no_answer_recall"]),
                        s.get("wrong", ""),  # F1 0, or any answer to an unanswerable question
                    ]
                )
            )
        lines += ["", f"Mean F1 {_f(row['mean_f1'])}.", ""]
    for label, report in (("trained", trained), ("heuristic", heuristic)):
        if not report:
            continue
        key = "curve_reader_alone" if "curve_reader_alone" in report else None
        curve = report.get(key) if key else None
        if not curve:
            continue
        names = list(curve[0]["sets"])
        lines += [f"### Threshold curve, {label} reader (its chosen retrieval weight)", ""]
        lines.append(_row(["threshold", *[_short_set_name(n) for n in names], "mean F1"]))
        lines.append("|---:|" + "---:|" * (len(names) + 1))
        for r in curve:
            lines.append(_row([r["threshold"], *[_f(r["sets"][n]["f1"]) for n in names], _f(r["mean_f1"])]))
        lines.append("")
        cmd = report.get("command")
        if cmd:
            lines += ["```console", cmd, "```", ""]
    lines += listing_section(trained)
    lines += top_k_section(_load("top-k.json"))
    lines += coverage_section(_load("coverage-separation.json"))
    lines += oracle_table(_load("oracle.json"))
    training = json.loads(TRAINING.read_text(encoding="utf-8")) if TRAINING.is_file() else None
    lines += ["", training_line(training), "", *training_section(training, _load("windows.json"))]
    lines += [latency_line(_load("latency.json"), _load("reader-peers.json")), ""]
    lines += [part for name in UNREACHABLE_RESULTS if (line := unreachable_line(_load(name))) for part in (line, "")]
    return "\n".join(lines)


def splice(text: str, block: str) -> str:
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise SystemExit(f"README.md must hold {BEGIN} and {END} once each")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return head + block + tail


def main(argv: list[str]) -> int:
    readme = splice(README.read_text(encoding="utf-8"), readme_block())
    doc = reader_doc()
    if "--check" in argv:
        stale = [p.name for p, want in ((README, readme), (READER_DOC, doc)) if p.read_text(encoding="utf-8") != want]
        if stale:
            print(f"out of date: {', '.join(stale)}; run python -m eval.results_doc", file=sys.stderr)
            return 1
        return 0
    README.write_text(readme, encoding="utf-8")
    READER_DOC.write_text(doc, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
