"""`qa bench`: indexing, latency, scale and peer benchmarks, each writing JSON (see docs/performance.md).

Registered by `cli` (the `qa` program); this module imports only typer so `qa --help` stays fast, and each command imports its
benchmark when it runs. Speed targets are printed beside the figures, never asserted.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

bench_app = typer.Typer(
    no_args_is_help=True, help="Speed benchmarks: medians and ratios, written as JSON under var/bench/."
)

OutOpt = Annotated[Path | None, typer.Option("--out", help="JSON report path (default: var/bench/<command>.json).")]
BackendOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--backend", help="Embedding backend, repeatable: torch, onnx, onnx-int8 (default: torch, onnx-int8)."
    ),
]


def _command(ctx: typer.Context) -> str:
    """The command as given (options from the command line only), to rerun it: rebuilt from the context
    rather than sys.argv, which is the test runner's under CliRunner. Typer vendors click, so duck typing."""
    parts = ["qa", *ctx.command_path.split()[1:]]  # the root is "qa" whatever the runner calls it
    for param in ctx.command.params:
        name = param.name or ""
        source = ctx.get_parameter_source(name)
        if getattr(source, "name", "") != "COMMANDLINE" or getattr(param, "param_type_name", "") != "option":
            continue
        value = ctx.params[name]
        if getattr(param, "is_flag", False):
            secondary = getattr(param, "secondary_opts", None) or param.opts
            parts.append(param.opts[0] if value else secondary[0])
            continue
        for v in value if isinstance(value, (list, tuple)) else [value]:
            parts += [param.opts[0], shlex.quote(str(v))]
    return " ".join(parts)


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _backends(values: list[str] | None) -> list[str]:
    from index.embedder import EmbedderBackend

    chosen = values or [EmbedderBackend.TORCH.value, EmbedderBackend.ONNX_INT8.value]
    try:
        return [EmbedderBackend(v).value for v in chosen]
    except ValueError:
        choices = ", ".join(b.value for b in EmbedderBackend)
        raise typer.BadParameter(f"unknown backend in {chosen}; choose from: {choices}") from None


def _corpus_spec(spec: str, limit: int | None) -> tuple[str, int | None]:
    """`pubmedqa:200` -> ("pubmedqa", 200); a bare name takes --limit."""
    name, sep, n = spec.rpartition(":")
    if sep and n.isdigit() and name:
        return name, int(n)
    return spec, limit


def _finish(ctx: typer.Context, kind: str, results: dict[str, Any], load_before: list[float], out: Path | None) -> Path:
    from eval.bench.common import DEFAULT_OUT_DIR, envelope, write_json
    from eval.bench.report import summarise

    report = envelope(kind, _command(ctx), results, load_before)
    path = write_json(out or DEFAULT_OUT_DIR / f"{kind}.json", report)
    typer.echo(summarise(report))
    _say(f"JSON: {path}")
    return path


@bench_app.command("indexing")
def indexing_command(
    ctx: typer.Context,
    corpus: Annotated[
        list[str] | None,
        typer.Option(
            "--corpus",
            help="builtin, pubmedqa, covidqa or a corpus path, NAME:N for a seeded sample of N documents; "
            "repeatable (default: the three named).",
        ),
    ] = None,
    backend: BackendOpt = None,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Interleaved repetitions; medians reported.")] = 3,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="A seeded sample of N documents.")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Shared benchmarks folder.")] = None,
    out: OutOpt = None,
) -> None:
    """Chunks/s and tokens/s of `build_index` next to the raw encoder on the same texts (the efficiency ratio)."""
    from qa.settings import offline_by_default

    offline_by_default()
    from eval.bench.common import DEFAULT_DATA_DIR, DEFAULT_OUT_DIR, envelope, load_average, write_json
    from eval.bench.corpora import load_bench_corpus
    from eval.bench.indexing import bench_corpus

    load_before = load_average()
    backends = _backends(backend)
    results = []
    for spec in corpus or ["builtin", "pubmedqa", "covidqa"]:
        name, n = _corpus_spec(spec, limit)
        c = load_bench_corpus(name, data_dir or DEFAULT_DATA_DIR, n)
        results.append(bench_corpus(c, backends, repeats, say=_say))
        # After each corpus, so a long run that is stopped keeps what it measured.
        partial = {"corpora": results, "partial": True}
        write_json(out or DEFAULT_OUT_DIR / "indexing.json", envelope("indexing", _command(ctx), partial, load_before))
    _finish(ctx, "indexing", {"corpora": results}, load_before, out)


@bench_app.command("latency")
def latency_command(
    ctx: typer.Context,
    backend: BackendOpt = None,
    requests: Annotated[int, typer.Option("--requests", min=1, help="Sequential requests measured.")] = 200,
    warmup: Annotated[int, typer.Option("--warmup", min=0)] = 10,
    clients: Annotated[int, typer.Option("--clients", min=0, help="Concurrent clients (0 skips).")] = 8,
    concurrent_requests: Annotated[int, typer.Option("--concurrent-requests", min=1)] = 200,
    split_repeats: Annotated[int, typer.Option("--split-repeats", min=1, help="Passes over the questions.")] = 5,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=0, help="Questions in the one-by-one vs batched timing (0 skips).")
    ] = 16,
    http: Annotated[bool, typer.Option("--http/--no-http", help="Also measure /ask over loopback HTTP.")] = True,
    out: OutOpt = None,
) -> None:
    """/ask p50/p95/p99 for one client, requests/s for several, and one request split into its stages."""
    from qa.settings import offline_by_default

    offline_by_default()
    from eval.bench.common import load_average
    from eval.bench.latency import bench_latency
    from eval.bench.questions import BUILTIN_QUESTIONS, batch_questions

    load_before = load_average()
    results = bench_latency(
        _backends(backend),
        BUILTIN_QUESTIONS,
        warmup,
        requests,
        clients,
        concurrent_requests,
        split_repeats,
        http=http,
        say=_say,
        batch=batch_questions(batch_size) if batch_size else (),
    )
    _finish(ctx, "latency", results, load_before, out)


@bench_app.command("scale")
def scale_command(
    ctx: typer.Context,
    size: Annotated[
        list[int] | None, typer.Option("--size", min=100, help="Vectors, repeatable (default: 10k, 100k, 1M).")
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            help="flat, hnsw, hnsw_sq8, ivf_sq8, ivf_pq, auto (what `qa index` builds by default); repeatable "
            "(default: all but auto).",
        ),
    ] = None,
    queries: Annotated[int, typer.Option("--queries", min=10, help="Queries per vector set.")] = 200,
    max_build_s: Annotated[
        float,
        typer.Option(
            "--max-build-s",
            help="Skip a kind whose build, estimated from the size before, is longer; stop a graph build past it.",
        ),
    ] = 900.0,
    real: Annotated[bool, typer.Option("--real/--no-real", help="Also the corpora's saved real embeddings.")] = True,
    shards: Annotated[
        int,
        typer.Option("--shards", min=1, help="N > 1: single-node IVF-SQ8 against N shards on Ray (docs/scale-out.md)."),
    ] = 1,
    out: OutOpt = None,
) -> None:
    """Retrieval p50 at recall@10 >= 0.95, build time and bytes per vector for each FAISS index kind and size."""
    from eval.bench.common import load_average

    if shards > 1:
        from eval.bench.common import DEFAULT_OUT_DIR, envelope, write_json
        from eval.bench.scale_shards import bench_scale_shards

        load_before = load_average()
        runs = [bench_scale_shards(n, shards, queries, say=_say) for n in size or [1_000_000]]
        path = out or DEFAULT_OUT_DIR / "scale-shards.json"
        write_json(path, envelope("scale-shards", _command(ctx), {"runs": runs}, load_before))
        _say(f"wrote {path}")
        return
    from eval.bench.scale import IndexKind, bench_scale

    try:
        kinds = [IndexKind(k) for k in kind] if kind else [k for k in IndexKind if k is not IndexKind.AUTO]
    except ValueError:
        raise typer.BadParameter(f"unknown kind in {kind}; choose from: {', '.join(IndexKind)}") from None
    from eval.bench.common import DEFAULT_OUT_DIR, envelope, write_json

    load_before = load_average()
    path = out or DEFAULT_OUT_DIR / "scale.json"

    def partial(results: dict[str, Any]) -> None:
        write_json(path, envelope("scale", _command(ctx), {**results, "partial": True}, load_before))

    results = bench_scale(
        size or [10_000, 100_000, 1_000_000], kinds, queries, max_build_s, real, say=_say, on_progress=partial
    )
    _finish(ctx, "scale", results, load_before, out)


@bench_app.command("peers")
def peers_command(
    ctx: typer.Context,
    corpus: Annotated[str, typer.Option("--corpus", help="Corpus name or path.")] = "pubmedqa",
    repeats: Annotated[int, typer.Option("--repeats", min=1)] = 3,
    queries: Annotated[int, typer.Option("--queries", min=1, help="Questions timed per framework.")] = 200,
    peer: Annotated[
        list[str] | None, typer.Option("--peer", help="txtai, haystack, haystack-faiss; repeatable (default: all).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="A seeded sample of N documents.")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Shared benchmarks folder.")] = None,
    out: OutOpt = None,
) -> None:
    """Ours against txtai and Haystack (their own environments, see scripts/peers/setup.sh) on the same work."""
    from qa.settings import offline_by_default

    offline_by_default()
    from eval.bench.common import DEFAULT_DATA_DIR, load_average
    from eval.bench.corpora import load_bench_corpus
    from eval.bench.peers import bench_peers

    load_before = load_average()
    name, n = _corpus_spec(corpus, limit)
    c = load_bench_corpus(name, data_dir or DEFAULT_DATA_DIR, n)
    _finish(ctx, "peers", bench_peers(c, repeats, queries, peer, say=_say), load_before, out)


@bench_app.command("reader-peers")
def reader_peers_command(
    ctx: typer.Context,
    model: Annotated[
        Path | None,
        typer.Option("--model", help="Extractive QA model folder both readers load (default: the shipped reader)."),
    ] = None,
    questions: Annotated[int, typer.Option("--questions", min=1, help="Gold questions read, from the first.")] = 45,
    threads: Annotated[
        list[int] | None, typer.Option("--threads", min=1, help="Torch threads, repeatable (default: 1 and 2).")
    ] = None,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Questions read untimed first, on each side.")] = 3,
    gold: Annotated[Path | None, typer.Option("--gold", help="Gold set (default: seed_dev).")] = None,
    out: OutOpt = None,
) -> None:
    """Our reader against Haystack's ExtractiveReader on the same model and passages: p50/p95, answers agreeing."""
    from qa.settings import offline_by_default

    offline_by_default()
    from eval.bench.common import DEFAULT_OUT_DIR, envelope, load_average, write_json
    from eval.bench.reader_peers import DEFAULT_GOLD, bench_reader_peers, check_model_folder, format_table
    from qa.readers.transformers_reader import BUNDLED_READER_DIR

    folder = model or BUNDLED_READER_DIR
    try:
        check_model_folder(folder)
    except FileNotFoundError as err:
        raise typer.BadParameter(str(err), param_hint="--model") from None
    load_before = load_average()
    results = bench_reader_peers(folder, gold or DEFAULT_GOLD, questions, threads or [1, 2], warmup, say=_say)
    report = envelope("reader-peers", _command(ctx), results, load_before)
    path = write_json(out or DEFAULT_OUT_DIR / "reader-peers.json", report)
    typer.echo(format_table(results["results"]))
    machine = report["machine"]
    typer.echo(f"model {results['model']}; load {machine['load_before']} before, {machine['load_after']} after")
    _say(f"JSON: {path}")


@bench_app.command("quality")
def quality_command(
    ctx: typer.Context,
    gold: Annotated[
        list[Path] | None,
        typer.Option("--gold", help="Gold sets, repeatable (default: seed_dev and COVID-QA dev from --data-dir)."),
    ] = None,
    backend: BackendOpt = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Shared benchmarks folder.")] = None,
    out: OutOpt = None,
) -> None:
    """The harness's answer and retrieval figures per embedding backend, and whether each is within 0.5 point."""
    from qa.settings import offline_by_default

    offline_by_default()
    from eval.bench.common import DEFAULT_DATA_DIR, load_average
    from eval.bench.quality import bench_quality

    root = data_dir or DEFAULT_DATA_DIR
    paths = gold or [root.parent / "gold" / "seed_dev.jsonl", root / "covid_qa" / "covid-qa-dev.json"]
    load_before = load_average()
    _finish(ctx, "quality", bench_quality(paths, _backends(backend), say=_say), load_before, out)


@bench_app.command("report")
def report_command(
    folder: Annotated[Path, typer.Option("--dir", help="Where the benchmark JSON files are.")] = Path("var/bench"),
    out: Annotated[Path | None, typer.Option("--out", help="Also write the Markdown here.")] = None,
) -> None:
    """One Markdown table of every benchmark found in --dir, with each target met or missed."""
    from eval.bench.report import markdown_report

    text = markdown_report(folder)
    typer.echo(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")
