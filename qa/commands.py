"""`qa index` and `qa ask`, and the helpers every package's commands share (settings from flags, errors, output).

This is an edge of the system: it reads settings, builds components, prints. The `qa` program itself is
assembled in `cli` (top level), which mounts these commands beside those of `service` and `eval`; nothing in
`qa` imports either of those.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from common.errors import QAError
from common.progress import quiet_libraries
from index.embedder import EmbedderBackend
from index.ingest import CorpusFormat, InvalidRecordPolicy
from index.retriever import RetrievalMode
from qa.readers.base import ReaderKind
from qa.readers.precision import Precision
from qa.readers.transformers_reader import ReaderBackend
from qa.settings import Settings, offline_by_default

console = Console()
err_console = Console(stderr=True)

IndexDirOpt = Annotated[
    Path | None, typer.Option("--index-dir", help="Index directory (default: QA_INDEX_DIR or var/index).")
]
CorpusOpt = Annotated[
    Path | None, typer.Option("--corpus", help="Corpus file or folder (default: the built-in abstracts).")
]
RetrieverOpt = Annotated[RetrievalMode | None, typer.Option("--retriever", help="Retrieval mode.")]
ReaderOpt = Annotated[ReaderKind | None, typer.Option("--reader", help="Reader (default: QA_READER).")]
ReaderModelOpt = Annotated[
    str | None, typer.Option("--reader-model", help="QA model folder or hub id for the model readers.")
]
ReaderBackendOpt = Annotated[
    ReaderBackend | None,
    typer.Option("--reader-backend", help="Reader model backend (default: QA_READER_BACKEND, torch)."),
]
ReaderPrecisionOpt = Annotated[
    Precision | None,
    typer.Option(
        "--reader-precision", help="Reader arithmetic (default: QA_READER_PRECISION, auto: bf16 where native)."
    ),
]
EmbeddingBackendOpt = Annotated[
    EmbedderBackend | None,
    typer.Option(
        "--embedding-backend", help="Embedding backend (default: QA_EMBEDDING_BACKEND); must be the index's own."
    ),
]


def load_settings(**overrides: Any) -> Settings:
    """Settings from file and environment, then CLI flags that were actually given."""
    offline_by_default()
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def index_command(
    corpus: CorpusOpt = None,
    index_dir: IndexDirOpt = None,
    fmt: Annotated[CorpusFormat, typer.Option("--format", help="Corpus format.")] = CorpusFormat.AUTO,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Skip and count bad records instead of stopping.")
    ] = False,
    embedding_model: Annotated[str | None, typer.Option("--embedding-model")] = None,
    embedding_backend: EmbeddingBackendOpt = None,
    shards: Annotated[
        int, typer.Option("--shards", min=1, help="Shards to build (1: the single-node index; >1: on Ray).")
    ] = 1,
    engine: Annotated[str, typer.Option("--engine", help="Distributed engine for --shards > 1 (ray).")] = "ray",
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster to join (default: a local loopback-only one).")
    ] = None,
    pubmed_updates: Annotated[
        list[Path] | None,
        typer.Option(
            "--pubmed-update",
            help="Apply this PubMed update file (or folder of them), in name order, to the sharded index in "
            "--index-dir instead of building; repeatable. A file applied before changes nothing.",
        ),
    ] = None,
) -> None:
    """Ingest a corpus, chunk, embed and index it; the new index replaces the old one atomically."""
    if pubmed_updates:
        return pubmed_update_command(index_dir, pubmed_updates, embedding_model, embedding_backend, skip_invalid)
    if shards > 1 or address is not None:
        return sharded_index_command(
            corpus, index_dir, fmt, skip_invalid, embedding_model, embedding_backend, shards, engine, address
        )
    from index.ingest import load_corpus
    from index.store import build_index
    from qa.pipeline import build_embedder

    settings = load_settings(
        corpus_path=corpus, index_dir=index_dir, embedding_model=embedding_model, embedding_backend=embedding_backend
    )
    try:
        policy = InvalidRecordPolicy.SKIP if skip_invalid else InvalidRecordPolicy.RAISE
        result = load_corpus(settings.corpus_path, fmt, policy)
        for rec in result.skipped:
            err_console.print(f"[yellow]skipped[/] {escape(rec.location)}: {escape(rec.reason)}")
        embedder = build_embedder(settings)
        embedder.warm_up(say=lambda m: err_console.print(escape(m)))
        manifest = build_index(
            result.documents,
            embedder,
            settings.index_dir,
            settings.index_config(),
            source=str(settings.corpus_path),
            show_progress=True,
            on_stage=lambda m: err_console.print(escape(m)),
        )
    except QAError as err:
        fail(str(err))
    console.print(
        f"indexed {manifest.corpus.n_documents} documents ({len(result.skipped)} skipped) as "
        f"{manifest.corpus.n_chunks} chunks in {settings.index_dir} (fingerprint {manifest.fingerprint})"
    )


def sharded_index_command(
    corpus: Path | None,
    index_dir: Path | None,
    fmt: CorpusFormat,
    skip_invalid: bool,
    embedding_model: str | None,
    embedding_backend: EmbedderBackend | None,
    shards: int,
    engine: str,
    address: str | None,
) -> None:
    """`qa index --shards N`: a sharded index built on Ray (index/shards), published as one directory."""
    from index.shards.build import ShardEngine, build_sharded
    from qa.pipeline import build_embedder

    if engine not in {e.value for e in ShardEngine}:
        fail(f"--engine {engine!r}: choose one of {', '.join(e.value for e in ShardEngine)}")
    settings = load_settings(
        corpus_path=corpus, index_dir=index_dir, embedding_model=embedding_model, embedding_backend=embedding_backend
    )
    try:
        policy = InvalidRecordPolicy.SKIP if skip_invalid else InvalidRecordPolicy.RAISE
        built = build_sharded(
            Path(settings.corpus_path),
            Path(settings.index_dir),
            shards,
            build_embedder(settings),
            settings.index_config(),
            fmt,
            policy,
            address=address,
            say=lambda m: err_console.print(escape(m)),
        )
    except QAError as err:
        fail(str(err))
    m = built.manifest
    console.print(
        f"indexed {m.corpus.n_documents} documents as {m.corpus.n_chunks} chunks on {len(m.shards)} shards in "
        f"{settings.index_dir} (fingerprint {m.fingerprint})"
    )


def pubmed_update_command(
    index_dir: Path | None,
    paths: list[Path],
    embedding_model: str | None,
    embedding_backend: EmbedderBackend | None,
    skip_invalid: bool,
) -> None:
    """`qa index --pubmed-update F`: PubMed update files applied to the owning shards (index/shards/updates.py)."""
    from index.shards.updates import apply_update_files
    from qa.pipeline import build_embedder

    settings = load_settings(index_dir=index_dir, embedding_model=embedding_model, embedding_backend=embedding_backend)
    files = [f for p in paths for f in (sorted(p.glob("*.xml*")) if p.is_dir() else [p])]
    try:
        embedder = build_embedder(settings)
        embedder.warm_up()
        policy = InvalidRecordPolicy.SKIP if skip_invalid else InvalidRecordPolicy.RAISE
        outcomes = apply_update_files(
            Path(settings.index_dir),
            files,
            embedder,
            settings.index_config(),
            on_invalid=policy,
            say=lambda m: err_console.print(escape(m)),
        )
    except (QAError, OSError) as err:
        fail(str(err))
    for o in outcomes:
        what = (
            f"{len(o.added)} added, {len(o.replaced)} revised, {len(o.deleted)} deleted on shards {o.shards}"
            if o.applied
            else "already applied, unchanged"
        )
        console.print(f"{o.name}: {what}")


def highlight(passage: str, start: int, end: int) -> str:
    return f"{escape(passage[:start])}[bold black on yellow]{escape(passage[start:end])}[/]{escape(passage[end:])}"


def ask_command(
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    top_k: Annotated[int | None, typer.Option("--top-k", min=1, max=50, help="Passages to retrieve.")] = None,
    max_answers: Annotated[int | None, typer.Option("--max-answers", min=1, max=20)] = None,
    retriever: RetrieverOpt = None,
    reader: ReaderOpt = None,
    reader_model: ReaderModelOpt = None,
    reader_backend: ReaderBackendOpt = None,
    reader_precision: ReaderPrecisionOpt = None,
    index_dir: IndexDirOpt = None,
    embedding_backend: EmbeddingBackendOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the stable JSON form (see README).")] = False,
) -> None:
    """Answer a question with verbatim spans of the corpus, each with its citation."""
    quiet_libraries()  # the answer is the output: no "Loading weights" bar before it
    from qa.pipeline import DEFAULT_DIR_ONLY, QAPipeline

    settings = load_settings(
        index_dir=index_dir,
        reader=reader,
        reader_model=reader_model,
        reader_backend=reader_backend,
        reader_precision=reader_precision,
        embedding_backend=embedding_backend,
    )
    pipeline = QAPipeline(settings)
    try:
        # Only the default index directory is built on first run: a mistyped --index-dir is an error.
        pipeline.warm_up(build_if_missing=DEFAULT_DIR_ONLY, say=lambda m: err_console.print(escape(m)))
        result = pipeline.run(question, top_k=top_k, max_answers=max_answers, retriever=retriever, reader=reader)
    except (QAError, ValueError) as err:
        fail(str(err))
    if as_json:
        json.dump(result.to_dict(), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return
    if result.no_answer:
        console.print("[bold]No answer found in the corpus.[/] Closest evidence:")
        for p in result.passages[:3]:
            console.print(
                f"  [cyan]{p.chunk.doc_id}[/] chars {p.chunk.start}-{p.chunk.end}: {escape(p.chunk.text[:200])}…"
            )
        return
    for i, a in enumerate(result.answers, start=1):
        console.print(f"[bold]{i}. {escape(a.text)}[/]  score {a.score:.3f}")
        console.print(f"   cites [cyan]{a.doc_id}[/], characters {a.start}-{a.end}")
        console.print("   " + highlight(a.passage.text, a.span_in_passage.start, a.span_in_passage.end))


def register(app: typer.Typer) -> None:
    app.command("index")(index_command)
    app.command("ask")(ask_command)
