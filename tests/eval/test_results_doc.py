"""The README's results block and docs/reader.md are generated from docs/results/*.json: they cannot drift."""

from __future__ import annotations

import json

from eval import results_doc


def test_generated_results_are_up_to_date() -> None:
    assert results_doc.main(["--check"]) == 0, "run: python -m eval.results_doc"


def test_the_readme_block_shows_each_reader_and_the_mean(tmp_path) -> None:
    block = results_doc.readme_block()
    assert block.startswith(results_doc.BEGIN) and block.endswith(results_doc.END)
    for label in ("heuristic", "trained (default)", "mean over the dev sets"):
        assert label in block


def _row(hw: float | None, mean_f1: float) -> dict:
    return {
        "heuristic_weight": hw,
        "retrieval_weight": 0.3,
        "threshold": 0.5,
        "mean_f1": mean_f1,
        "sets": {"seed_dev.jsonl:retrieved": {"f1": mean_f1}},
    }


def test_the_combination_gets_its_column_even_when_the_reader_alone_is_chosen() -> None:
    heuristic = {"best": _row(None, 0.5)}
    trained = {"best": _row(None, 0.6), "best_reader_alone": _row(None, 0.6), "best_combined": _row(0.2, 0.58)}
    labels = [label for label, _ in results_doc.readers(heuristic, trained)]
    assert labels == ["heuristic", "trained (default)", "combined (heuristic share 0.2)"]
    table = "\n".join(results_doc.main_table(heuristic, trained))
    assert "| 0.500 | 0.600 | 0.580 |" in table
    # An older summary without best_combined: the combination shows only where it was the chosen setting.
    assert len(results_doc.readers(heuristic, {"best": _row(None, 0.6), "best_reader_alone": _row(None, 0.6)})) == 2


def test_ask_latency_line_reads_the_default_backend_from_the_benchmark_json() -> None:
    def backend(p50: float) -> dict:
        return {
            "sequential": {
                "latency_ms": {"p50": p50, "p95": p50 * 2},
                "server_timing_ms": {"read": 9.0, "total": 10.0},
            },
            "concurrent": {"clients": 8, "throughput_rps": 3.5},
        }

    latency = {
        "command": "qa bench latency",
        "machine": {"cpus": 2, "load_before": [0.5], "load_after": [1.5]},
        "backends": {"torch": backend(999.0), "onnx-int8": backend(12.0)},
    }
    line = results_doc.ask_latency_line(latency)
    assert "p50 12 ms / p95 24 ms" in line and "onnx-int8" in line and "3.5 requests/s with 8 clients" in line
    assert "999" not in line
    assert results_doc.ask_latency_line({**latency, "backends": {"torch": backend(5.0)}}) == ""


def test_precision_line_reports_each_variant_against_the_fp32_reference() -> None:
    def row(variant: str, active: str, p50: float, same: int, final: int, speed: float) -> dict:
        return {
            "variant": variant,
            "active_precision": active,
            "ms": {"p50": p50, "p95": p50 * 1.2},
            "vs_reference": {
                "questions": 45,
                "same_best_span": same,
                "same_final_answer_or_abstention": final,
                "p50_speed_up": speed,
            },
        }

    report = {
        "command": "python -m eval.bench.reader_variants gold.jsonl qa/data/reader 45 torch:fp32 torch:auto",
        "gold": "../shared/gold/seed_dev.jsonl",
        "threads": 1,
        "machine": {"load_before": [0.3], "load_after": [1.1]},
        "results": [row("torch:fp32", "fp32", 260.0, 45, 45, 1.0), row("torch:auto", "bf16", 150.0, 44, 45, 1.73)],
    }
    line = results_doc.precision_line(report)
    assert "torch:auto (bf16) p50 150 ms against 260 ms (1.73x)" in line
    assert "same best span on 44/45" in line and "abstention from the pipeline on 45/45" in line
    assert "seed_dev.jsonl" in line and report["command"] in line
    assert results_doc.precision_line({**report, "results": report["results"][:1]}) == ""
    assert results_doc.precision_line(None) == ""


def test_unreachable_line_reports_speed_passages_and_agreement() -> None:
    def side(name: str, p50: float, read: float, none: int) -> dict:
        return {
            "side": name,
            "ms": {"p50": p50, "p95": p50 * 1.3, "mean": p50},
            "passages_read_mean": read,
            "nothing_read": none,
            "answered": 39,
        }

    report = {
        "command": "python -m eval.bench.unreachable gold.jsonl qa/data/reader 45",
        "gold": "../shared/gold/seed_dev.jsonl",
        "threads": 1,
        "questions": 45,
        "machine": {"load_before": [0.3], "load_after": [1.1]},
        "results": [side("read every passage", 142.3, 5.0, 0), side("skip unreachable", 90.2, 3.2, 2)],
        "same_answers": 40,
        "same_first_answer_or_abstention": 45,
        "mean_speed_up": 1.59,
        "p50_speed_up": 1.58,
    }
    line = results_doc.unreachable_line(report)
    assert "reading p50 90 ms against 142 ms (1.58x; mean 1.59x)" in line
    assert "3.2 passages read per question against 5.0, none for 2" in line
    assert "abstention on 45/45" in line and "6 decimals on 40/45" in line and report["command"] in line
    assert results_doc.unreachable_line(None) == ""


def test_listing_section_shows_every_ratio_and_the_chosen_listing() -> None:
    def listing(ratio: float, list_f1: float) -> dict:
        s = {"list_f1": list_f1, "answers_per_answered": 1.2, "secondary_listed": 7, "secondary_f1": 0.25}
        return {"secondary_ratio": ratio, "mean_list_f1": list_f1, "sets": {"seed_dev.jsonl:retrieved": s}}

    curve = [listing(0.0, 0.41), listing(0.8, 0.52)]
    lines = results_doc.listing_section(
        {"max_answers": 3, "secondary_reader_alone": curve[1], "listing_reader_alone": curve}
    )
    text = "\n".join(lines)
    assert "secondary ratio 0.8" in lines[0] and "up to 3 answers" in text
    assert "| 0.0 | 0.410 | 0.410 |" in text and "| 0.8 | 0.520 | 0.520 |" in text
    assert "| 1.200 | 7 | 0.250 |" in text
    assert results_doc.listing_section({"best": {}}) == [] and results_doc.listing_section(None) == []


def test_coverage_section_shows_each_weighting_per_set() -> None:
    report = {
        "command": "python -m eval.bench.coverage_separation gold.jsonl",
        "sets": [
            {
                "gold": "../shared/gold/seed_dev.jsonl",
                "questions": 43,
                "weightings": {
                    "1:1": {"auc": 0.9392, "gold_under_0.8": 15},
                    "0.5:0": {"auc": 0.9732, "gold_under_0.8": 5},
                },
            }
        ],
    }
    text = "\n".join(results_doc.coverage_section(report))
    assert "| set | questions | 1:1 | 0.5:0 |" in text
    assert "| seed_dev.jsonl | 43 | 0.939 (15) | 0.973 (5) |" in text and report["command"] in text
    assert results_doc.coverage_section(None) == []


def test_top_k_section_says_which_commit_s_reader_it_measured() -> None:
    sets = {"seed_dev.jsonl:retrieved": {"f1": 0.7, "wrong": 3}}
    row = {"top_k": 3, "mean_f1": 0.7, "wrong": 3, "sets": sets, "threshold": 0.25, "retrieval_weight": 0.2}
    report = {"command": "python -m eval.bench.top_k", "rows": [row]}
    report |= {"code": {"git_commit": "243add9"}, "created_at": "2026-12-04T17:42:01Z"}
    text = "\n".join(results_doc.top_k_section(report))
    assert "measured at commit 243add9 (2026-12-04) with that commit's reader" in text
    assert "| 3 | 0.7000 |" in text and results_doc.top_k_section(None) == []


def test_training_line_says_when_the_shipped_weights_are_an_average() -> None:
    from qa.settings import PACKAGE_DIR

    training = json.loads((PACKAGE_DIR / "data" / "reader" / "training.json").read_text(encoding="utf-8"))
    training.pop("weight_average", None)
    assert "the shipped weights are" not in results_doc.training_line(training)
    training["weight_average"] = {
        "rule": "uniform",
        "sources": [
            {"source": "var/reader-stage8", "kind": "dev-best weights", "step": 400, "sha256": "a" * 16},
            {"source": "var/reader-stage8/checkpoint/state.pt", "kind": "last step of its run", "step": 1200},
        ],
    }
    line = results_doc.training_line(training)
    assert line.endswith(
        "; the shipped weights are the uniform average of 2 (folders of the machine that trained them; "
        "qa/data/reader/MODEL_CARD.md gives the command that makes each): var/reader-stage8 (dev-best weights, step 400), "
        "var/reader-stage8/checkpoint/state.pt (last step of its run, step 1200)."
    )
    sibling = {"data": {"train": [{"path": "x/covid-qa-train.json"}]}, "wall_time_s": 1552, "device": "cpu"}
    training["weight_average"]["sources"][1] |= {"source": "var/reader-b", "kind": "dev-best weights", "run": sibling}
    assert results_doc.training_line(training).endswith(
        "var/reader-b (dev-best weights, step 1200; its own run: covid-qa-train.json, 0.4 h on cpu)."
    )


def test_epochs_are_counted_per_run_and_summed_over_runs_on_the_same_data() -> None:
    def stage(files: list[str], best: int, per_epoch: int) -> dict:
        return {"data": {"train": [{"path": f} for f in files]}, "best_step": best, "steps": {"per_epoch": per_epoch}}

    mix, covid = ["a/train-v1.1.json", "b/covid-qa-train.json"], ["b/covid-qa-train.json"]
    stages = [stage(mix, 100, 400), stage(mix, 300, 400), stage(covid, 20, 10)]
    assert results_doc.epochs_by_data(stages) == (
        "1.00 epochs of train-v1.1.json + covid-qa-train.json (runs 1-2), then 2.00 epochs of covid-qa-train.json "
        "(run 3)"
    )
    replayed = stage(covid, 30, 10)
    replayed["data"]["replay"] = [{"path": "a/train-v1.1.json", "drawn": 1417}]
    assert results_doc.epochs_by_data([*stages, replayed]).endswith(
        "then 2.00 epochs of covid-qa-train.json (run 3), then 3.00 epochs of covid-qa-train.json + 1,417 replayed "
        "questions of train-v1.1.json (run 4)"
    )


def test_hardware_is_counted_per_device_with_the_runs_on_each() -> None:
    def stage(device: str, hours: float, threads: int, speed: float) -> dict:
        return {"device": device, "wall_time_s": hours * 3600, "threads": threads, "speed": {"windows_per_s": speed}}

    cpu = [stage("cpu", 1.0, 2, 10.0), stage("cpu", 2.0, 2, 12.0)]
    assert results_doc.hardware_by_device(cpu) == "3.0 h on cpu (2 threads, last run 12.0 windows/s)"
    mixed = [*cpu, stage("NVIDIA H200", 0.1, 4, 1037.8), stage("cpu", 0.3, 2, 11.2)]
    assert results_doc.hardware_by_device(mixed) == (
        "3.3 h on cpu (runs 1-2, 4, 2 threads, last run 11.2 windows/s) and 0.1 h on NVIDIA H200 (run 3, 4 threads, "
        "1037.8 windows/s)"
    )


def test_windows_row_shows_the_whole_file_and_the_per_question_comparison() -> None:
    report = {
        "command": "python -m eval.bench.windows train.json",
        "file": "train-v1.1.json",
        "batched": {"questions": 87599, "seconds": 25.7, "questions_per_s": 3404.8, "windows_cut": 96487},
        "reference": {
            "questions": 2000,
            "questions_per_s": 1223.6,
            "batched_questions_per_s": 3001.2,
            "speedup": 2.452,
            "windows": 2417,
            "same_windows": 2417,
        },
    }
    (row,) = results_doc.windows_row(report)
    assert "all of train-v1.1.json" in row and "3,405 questions/s (87,599 questions, 96,487 windows, in 25.7 s)" in row
    assert "first 2,000: 1,224 questions/s" in row and "(2.452x), the same windows and labels on 2,417 of 2,417" in row
    assert results_doc.windows_row(None) == []
