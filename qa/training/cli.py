"""The reader commands `qa train-reader`, `eval-reader`, `average-readers` and `export-reader`; imports stay light here."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from qa.readers.precision import Precision

COVID_QA = Path("../shared/benchmarks/covid_qa")
DEFAULT_TRAIN = COVID_QA / "covid-qa-train.json"
DEFAULT_DEV = COVID_QA / "covid-qa-dev.json"
DEFAULT_OUTPUT = Path("var/reader-covidqa")

err_console = Console(stderr=True)


def _fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    @app.command("train-reader")
    def train_reader(
        train: Annotated[
            list[Path] | None,
            typer.Option("--train", help="SQuAD-format training file; repeat to mix several (shuffled together)."),
        ] = None,
        dev: Annotated[
            list[Path] | None,
            typer.Option("--dev", help="SQuAD-format dev file; repeat: the mean F1 over them selects the checkpoint."),
        ] = None,
        replay: Annotated[
            list[Path] | None,
            typer.Option(
                "--replay",
                help="SQuAD-format file to rehearse from (repeatable): --replay-questions of its questions, drawn "
                "by the seed, join the training data so a domain step keeps what the base model learned.",
            ),
        ] = None,
        replay_questions: Annotated[
            int, typer.Option("--replay-questions", min=0, help="Questions drawn from the --replay files.")
        ] = 0,
        output: Annotated[Path, typer.Option("--output", help="Folder for the best model.")] = DEFAULT_OUTPUT,
        base_model: Annotated[
            str, typer.Option("--base-model", help="Encoder folder or hub id (default: the bundled MiniLM).")
        ] = "bundled:all-MiniLM-L6-v2",
        epochs: Annotated[int, typer.Option("--epochs", min=1)] = 2,
        batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 32,
        lr: Annotated[float, typer.Option("--lr", min=0.0)] = 1e-4,
        max_length: Annotated[
            int, typer.Option("--max-length", min=32, max=4096, help="Window length in tokens.")
        ] = 256,
        stride: Annotated[int, typer.Option("--stride", min=0, help="Token overlap between windows.")] = 64,
        negative_ratio: Annotated[
            float, typer.Option("--negative-ratio", min=0.0, help="Windows without the answer per answer window.")
        ] = 1.0,
        hard_negatives: Annotated[
            float,
            typer.Option(
                "--hard-negatives",
                min=0.0,
                max=1.0,
                help="Share of those windows chosen as the question's hardest (most of its rare words, as retrieval "
                "would pick them) instead of at random; 0 draws them all at random.",
            ),
        ] = 0.0,
        unanswerable_ratio: Annotated[
            float,
            typer.Option(
                "--unanswerable-ratio",
                min=0.0,
                help="Unanswerable questions made per answerable one: its question on another paragraph of the "
                "same article (SQuAD 2.0's hard negatives).",
            ),
        ] = 0.0,
        swap_ratio: Annotated[
            float,
            typer.Option(
                "--swap-ratio",
                min=0.0,
                help="Unanswerable questions made per answerable one by swapping a specific word of the question "
                "(a name, a number) for one its passage never uses (SQuAD 2.0's entity swap).",
            ),
        ] = 0.0,
        seed: Annotated[int, typer.Option("--seed")] = 13,
        resume: Annotated[bool, typer.Option("--resume", help="Continue from OUTPUT/checkpoint/state.pt.")] = False,
        max_steps: Annotated[int | None, typer.Option("--max-steps", min=1, help="Stop after this many steps.")] = None,
        eval_every: Annotated[
            int | None, typer.Option("--eval-every", min=1, help="Steps between dev evaluations (default: per epoch).")
        ] = None,
        dev_sample: Annotated[
            int, typer.Option("--dev-sample", min=0, help="Dev questions per in-training evaluation (0: all).")
        ] = 100,
        eval_max_answer_tokens: Annotated[int, typer.Option("--eval-max-answer-tokens", min=1)] = 64,
        final_eval: Annotated[
            bool,
            typer.Option(
                "--final-eval/--no-final-eval",
                help="Score the kept weights on each whole dev file at the end (SQuAD dev: 10,570 questions).",
            ),
        ] = True,
        threads: Annotated[int | None, typer.Option("--threads", min=1, help="Torch CPU threads.")] = None,
        precision: Annotated[
            Precision,
            typer.Option(
                "--precision",
                help="bf16: autocast training steps and dev-sample evaluations; auto: bf16 where the device runs it "
                "natively (4.7 s a step against 6.5 s in fp32 on an AVX-512 BF16 CPU), else fp32.",
            ),
        ] = Precision.AUTO,
    ) -> None:
        """Fine-tune an extractive QA reader on SQuAD-format data and save the dev-best as a transformers folder."""
        from qa.settings import offline_by_default

        offline_by_default()
        from common.errors import QAError
        from qa.training.trainer import TrainConfig, run_training

        try:
            config = TrainConfig(
                train_paths=tuple(train or [DEFAULT_TRAIN]),
                dev_paths=tuple(dev or [DEFAULT_DEV]),
                replay_paths=tuple(replay or ()),
                replay_questions=replay_questions,
                output_dir=output,
                base_model=base_model,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                max_length=max_length,
                stride=stride,
                negative_ratio=negative_ratio,
                hard_negative_share=hard_negatives,
                unanswerable_ratio=unanswerable_ratio,
                swap_ratio=swap_ratio,
                seed=seed,
                max_steps=max_steps,
                eval_every=eval_every,
                dev_sample=dev_sample,
                eval_max_answer_tokens=eval_max_answer_tokens,
                final_eval=final_eval,
                threads=threads,
                resume=resume,
                precision=precision,
            )
            result = run_training(config, say=lambda m: err_console.print(escape(m)))
        except QAError as err:
            _fail(str(err))
        typer.echo(
            f"saved {result.output_dir} (step {result.best_step}): dev EM {result.dev.exact_match:.4f} "
            f"F1 {result.dev.f1:.4f} on {result.dev.questions} questions; wall time {result.wall_time_s:.0f} s"
        )

    @app.command("eval-reader")
    def eval_reader(
        model: Annotated[str, typer.Argument(help="Reader folder or hub id.")],
        data: Annotated[Path, typer.Argument(help="SQuAD-format file.")],
        max_answer_tokens: Annotated[int, typer.Option("--max-answer-tokens", min=1)] = 30,
        max_length: Annotated[int, typer.Option("--max-length", min=32)] = 256,
        stride: Annotated[int, typer.Option("--stride", min=0)] = 64,
        sample: Annotated[
            int | None, typer.Option("--sample", min=1, help="A seeded random sample of N questions only.")
        ] = None,
        seed: Annotated[int, typer.Option("--seed", help="Seed of --sample.")] = 13,
        threads: Annotated[int | None, typer.Option("--threads", min=1)] = None,
        precision: Annotated[
            Precision, typer.Option("--precision", help="auto (as the service reads): bf16 where it is native.")
        ] = Precision.AUTO,
        predictions: Annotated[Path | None, typer.Option("--predictions", help="Write id -> answer JSON here.")] = None,
    ) -> None:
        """Oracle-context EM/F1 of a reader: each question read against its own whole context (no retrieval)."""
        from qa.settings import offline_by_default

        offline_by_default()
        import torch

        from common.errors import QAError
        from qa.readers.transformers_reader import TransformersReader
        from qa.training.data import load_squad
        from qa.training.trainer import dev_subset, evaluate_reader

        if threads:
            torch.set_num_threads(threads)
        try:
            examples = dev_subset(load_squad(data), sample or 0, seed)
            reader = TransformersReader(
                model, max_answer_tokens=max_answer_tokens, max_length=max_length, stride=stride, precision=precision
            )
            reader.warm_up()
            result = evaluate_reader(reader, examples, progress=True, desc=data.name)
        except QAError as err:
            _fail(str(err))
        if predictions:
            predictions.write_text(json.dumps(result.predictions, indent=1) + "\n", encoding="utf-8")
        summary = {"model": model, "data": str(data), "sample_seed": seed if sample else None, **result.summary()}
        summary["max_answer_tokens"] = max_answer_tokens
        json.dump(
            {**summary, "max_length": max_length, "stride": stride, "precision": str(reader.active_precision)},
            sys.stdout,
        )
        sys.stdout.write("\n")

    @app.command("average-readers")
    def average_readers_command(
        sources: Annotated[
            list[Path],
            typer.Argument(
                help="Reader folders (their dev-best weights) or run checkpoints (FOLDER/checkpoint/state.pt: the "
                "last step) of one lineage; the first folder gives config, tokenizer and training report."
            ),
        ],
        output: Annotated[Path, typer.Option("--output", help="Folder for the averaged reader.")],
        dev: Annotated[
            list[Path] | None,
            typer.Option("--dev", help="SQuAD-format dev file the average is evaluated on (whole); repeat."),
        ] = None,
        threads: Annotated[int | None, typer.Option("--threads", min=1)] = None,
    ) -> None:
        """Write the uniform average of several checkpoints' weights as one reader, evaluated on the dev files."""
        from qa.settings import offline_by_default

        offline_by_default()
        import torch

        from common.errors import QAError
        from qa.training.averaging import average_readers

        if threads:
            torch.set_num_threads(threads)
        try:
            report = average_readers(
                sources, output, dev or [], say=lambda m: err_console.print(escape(m)), progress=True
            )
        except QAError as err:
            _fail(str(err))
        typer.echo(json.dumps({"output": str(output), "final_dev": report["final_dev"]}))

    @app.command("export-reader")
    def export_reader(
        source: Annotated[Path, typer.Argument(help="Trained reader folder.")],
        target: Annotated[Path, typer.Argument(help="Folder to write.")],
        fp32: Annotated[bool, typer.Option("--fp32", help="Keep fp32 weights (default: fp16).")] = False,
    ) -> None:
        """Write a compact copy of a reader (fp16 safetensors, tokenizer, config) for shipping."""
        from qa.settings import offline_by_default

        offline_by_default()
        from common.errors import QAError
        from qa.training.trainer import export_compact

        try:
            out = export_compact(source, target, half=not fp32)
        except QAError as err:
            _fail(str(err))
        size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
        typer.echo(f"wrote {out} ({size / 1e6:.1f} MB)")
