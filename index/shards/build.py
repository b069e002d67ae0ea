"""Build a sharded index on Ray: Ray Data reads, chunks and embeds; Ray tasks build the shards.

1. Ray Data reads the corpus files (one JSONL or PubMed XML file, or a folder of them; `.xml.gz` too) with the
   single-node readers (`index.ingest.load_corpus`), one file per task; the driver checks the whole corpus
   (`index.store.check_documents`: duplicate ids across files, ...).
2. A Ray Data actor pool chunks with `index.chunking.Chunker` and the embedder's own token counter (the
   tokenizer loaded once per actor): the same chunk ids and spans as the single-node path.
3. A second actor pool embeds (the model loaded once per actor; CPU int8 by default, `num_gpus` actors when
   asked). int8 activations are quantised once per batch, so a vector depends on its batch-mates: the driver
   plans the very batches a single-node `Embedder.encode` forms (all chunks longest first, `batch_size` at a
   time) and each actor call encodes one of them, so every vector is the single-node vector.
4. One IVF-SQ8 quantizer is trained in the driver on the seeded sample a single-node build would use and saved
   in the version folder; BM25 collection statistics are summed from one Ray task per shard.
5. One Ray task per shard writes its files (`layout.write_shard`); the driver writes the manifest and publishes
   the version atomically (`index.store.publish_version`).

Ray retries a task whose worker dies and restarts a dead Data actor, so a worker killed mid-build costs time,
not the build; a driver killed mid-build leaves only a `.tmp-*` folder, CURRENT still naming the previous
index, and the build is rerun from scratch (nothing is published half-made).

At PubMed scale the driver would not hold the corpus: steps 1-3 stream to per-partition files instead of
`take_all`, and the quantizer is trained on a sample (docs/scale-out.md); the code here holds in memory what a
few hundred thousand abstracts need.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from index.chunking import Chunker
from index.dense import DenseIndexType, new_dense_index, save_dense_index, train_dense_index
from index.documents import Chunk, Document
from index.errors import CorpusError
from index.ingest import CorpusFormat, InvalidRecordPolicy, corpus_fingerprint, load_corpus
from index.manifest import CorpusInfo, ModelInfo
from index.shards.layout import (
    QUANTIZER_NAME,
    ShardData,
    ShardedManifest,
    ShardInfo,
    finish_version,
    new_temp_version,
    now_utc,
    sharded_dense_spec,
    shared_digests,
    write_shard,
)
from index.shards.lexical import STATS_NAME, CollectionStats, shard_stats
from index.shards.partition import PartitionMap
from index.store import (
    ANY_CURRENT,
    VERSIONS_DIR,
    IndexConfig,
    check_documents,
    embedding_text,
    model_info,
    publish_version,
    read_pointer,
)

# Test hook: `QA_SHARDS_FAULT=<stage>:<marker file>` makes the first worker to reach <stage> ("shard" or
# "embed") SIGKILL itself, after creating the marker (so the retry proceeds); `<stage>-always:` kills every
# attempt. It is how the tests kill a Ray worker mid-build at a known point.
FAULT_ENV = "QA_SHARDS_FAULT"
# Ray's default for a task whose worker died is 3 retries; a build keeps it.
SHARD_TASK_RETRIES = 3
_CORPUS_SUFFIXES = (".jsonl", ".ndjson", ".xml", ".xml.gz")


class ShardBuildError(CorpusError):
    """A sharded build failed (a shard task kept failing, Ray unreachable, ...); the current index is unchanged."""


@dataclass(frozen=True, slots=True)
class EmbedderSpec:
    """What an actor needs to build its own embedder (an Embedder itself does not travel between processes)."""

    model: str
    batch_size: int
    backend: str
    onnx_cache_dir: str | None = None
    device: str = "cpu"

    def make(self) -> Any:
        from index.embedder import Embedder

        return Embedder(
            self.model, self.batch_size, device=self.device, backend=self.backend, onnx_cache_dir=self.onnx_cache_dir
        )


def maybe_fault(stage: str) -> None:
    """The test hook described at FAULT_ENV."""
    spec = os.environ.get(FAULT_ENV, "")
    want, _, marker = spec.partition(":")
    if want == f"{stage}-always":
        os.kill(os.getpid(), signal.SIGKILL)
    if want == stage and marker and not os.path.exists(marker):
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)


def corpus_files(path: Path) -> list[Path]:
    """The files a corpus path stands for: itself, or the corpus files of a folder (sorted by name: PubMed's
    baseline files are numbered in order)."""
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"{path}: corpus not found")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(_CORPUS_SUFFIXES))
    if not files and any(path.rglob("*.txt")):
        raise CorpusError(
            f"{path}: a folder of .txt files is a text-dir corpus, which the sharded build does not read; "
            "build it with --shards 1, or convert it to JSONL"
        )
    if not files:
        raise CorpusError(f"{path}: folder holds no corpus files ({', '.join(_CORPUS_SUFFIXES)})")
    return files


def read_corpus_file(path: str, fmt: str, on_invalid: str) -> list[Document]:
    """One corpus file's documents, read by the single-node reader (a `.gz` is unpacked to a temp file first)."""
    if path.lower().endswith(".gz"):
        with tempfile.TemporaryDirectory() as tmp:
            plain = Path(tmp) / Path(path[:-3]).name
            with gzip.open(path, "rb") as src, plain.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            return read_corpus_file(str(plain), fmt, on_invalid)
    return load_corpus(path, CorpusFormat(fmt), InvalidRecordPolicy(on_invalid)).documents


def _read_rows(row: dict[str, Any], fmt: str, on_invalid: str) -> list[dict[str, Any]]:
    docs = read_corpus_file(row["path"], fmt, on_invalid)
    return [
        {"file_no": row["file_no"], "rec_no": i, "doc": json.dumps(d.to_json(), ensure_ascii=False)}
        for i, d in enumerate(docs)
    ]


class _ChunkActor:
    def __init__(self, embedder: EmbedderSpec, config: IndexConfig) -> None:
        emb = embedder.make()
        emb.warm_up()
        self.chunker = Chunker(config.chunking, emb.count_tokens)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"seq": [], "chunks": []}
        for seq, raw in zip(batch["seq"], batch["doc"], strict=True):
            doc = Document.from_json(json.loads(raw))
            out["seq"].append(int(seq))
            out["chunks"].append(json.dumps([[c.start, c.end] for c in self.chunker.chunk(doc)]))
        return out


class _EmbedActor:
    def __init__(self, embedder: EmbedderSpec) -> None:
        self.embedder = embedder.make()
        self.embedder.warm_up()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        maybe_fault("embed")
        out: dict[str, list[Any]] = {"batch": [], "vectors": []}
        for b, raw in zip(batch["batch"], batch["texts"], strict=True):
            vecs = self.embedder.encode(json.loads(raw))
            out["batch"].append(int(b))
            out["vectors"].append(np.ascontiguousarray(vecs, dtype=np.float32).tobytes())
        return out


def _stats_task(texts: list[str]) -> CollectionStats:
    return shard_stats(texts)


def _shard_task(version_dir: str, data: ShardData, spec: Any, stats: CollectionStats, k1: float, b: float) -> ShardInfo:
    maybe_fault("shard")
    return write_shard(Path(version_dir), data, spec, stats, k1, b)


def read_documents(
    corpus: Path, fmt: CorpusFormat = CorpusFormat.AUTO, on_invalid: InvalidRecordPolicy = InvalidRecordPolicy.RAISE
) -> list[Document]:
    """Ray Data reads the corpus files, one file per task, with the single-node reader; the driver checks the
    whole (duplicate ids across files are refused by name). Documents in file-name order, then record order."""
    import ray

    if CorpusFormat(fmt) is CorpusFormat.TEXT_DIR:
        raise CorpusError(f"{corpus}: the sharded build reads JSONL or PubMed XML, not text-dir; use --shards 1")
    files = corpus_files(Path(corpus))
    ds = ray.data.from_items([{"file_no": i, "path": str(f)} for i, f in enumerate(files)])
    kwargs = {"fmt": CorpusFormat(fmt).value, "on_invalid": InvalidRecordPolicy(on_invalid).value}
    raw = sorted(ds.flat_map(_read_rows, fn_kwargs=kwargs).take_all(), key=lambda r: (r["file_no"], r["rec_no"]))
    documents = [Document.from_json(json.loads(r["doc"])) for r in raw]
    if not documents:
        raise CorpusError(f"{corpus}: no usable documents")
    check_documents(documents)
    return documents


def plan_batches(texts: Sequence[str], batch_size: int) -> list[np.ndarray]:
    """The batches `OnnxEncoder.encode` forms for `texts`: positions longest first (stable), `batch_size` each."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@dataclass(slots=True)
class ShardedBuild:
    manifest: ShardedManifest
    version: Path
    documents: list[Document]
    chunks: list[Chunk]
    vectors: np.ndarray


def _fault_env() -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k == FAULT_ENV}
    return {"env_vars": env} if env else {}


def build_sharded_index(
    corpus: Path,
    index_dir: Path,
    n_shards: int,
    embedder: EmbedderSpec,
    model: ModelInfo,
    config: IndexConfig | None = None,
    fmt: CorpusFormat = CorpusFormat.AUTO,
    on_invalid: InvalidRecordPolicy = InvalidRecordPolicy.RAISE,
    actors: int = 2,
    num_gpus: float = 0,
    on_stage: Callable[[str], None] | None = None,
) -> ShardedBuild:
    """Read, chunk and embed `corpus` on the running Ray cluster, build `n_shards` shards and publish them as one
    version of `index_dir`. Ray must be initialised (`ray_session`). `model` is the embedder's ModelInfo (the
    driver computes it once, as the manifest records it)."""
    import ray

    config = config or IndexConfig()
    say = on_stage or (lambda _m: None)
    if not ray.is_initialized():
        raise ShardBuildError("a sharded build needs a Ray cluster: start one with index.shards.build.ray_session")
    if n_shards < 1:
        raise ValueError(f"--shards must be >= 1, got {n_shards}")
    previous = read_pointer(Path(index_dir))
    documents = read_documents(Path(corpus), fmt, on_invalid)
    say(f"read {len(documents)} documents")

    pool = ray.data.ActorPoolStrategy(size=max(1, actors))
    doc_rows = ray.data.from_items(
        [{"seq": i, "doc": json.dumps(d.to_json(), ensure_ascii=False)} for i, d in enumerate(documents)]
    )
    spans_rows = doc_rows.map_batches(
        _ChunkActor, fn_constructor_args=(embedder, config), compute=pool, batch_size=64, num_cpus=1
    ).take_all()
    spans = {int(r["seq"]): json.loads(r["chunks"]) for r in spans_rows}
    chunks: list[Chunk] = []
    for seq, doc in enumerate(documents):
        chunks.extend(Chunk.from_document(doc, s, e, n) for n, (s, e) in enumerate(spans[seq]))
    by_id = {d.id: d for d in documents}
    texts = [embedding_text(by_id[c.doc_id], c) for c in chunks]
    say(f"{len(documents)} documents -> {len(chunks)} chunks")

    batches = plan_batches(texts, embedder.batch_size)
    batch_rows = [{"batch": i, "texts": json.dumps([texts[j] for j in idx])} for i, idx in enumerate(batches)]
    embed_args: dict[str, Any] = {"num_gpus": num_gpus} if num_gpus else {"num_cpus": 1}
    embedded = (
        ray.data.from_items(batch_rows)
        .map_batches(
            _EmbedActor,
            fn_constructor_args=(embedder,),
            compute=ray.data.ActorPoolStrategy(size=max(1, actors)),
            batch_size=1,
            runtime_env=_fault_env() or None,
            **embed_args,
        )
        .take_all()
    )
    vectors = np.zeros((len(chunks), model.dimension), dtype=np.float32)
    seen = set()
    for r in embedded:
        idx = batches[int(r["batch"])]
        vectors[idx] = np.frombuffer(r["vectors"], dtype=np.float32).reshape(len(idx), model.dimension)
        seen.add(int(r["batch"]))
    if len(seen) != len(batches):
        raise ShardBuildError(f"embedding returned {len(seen)} of {len(batches)} batches")
    say(f"embedded {len(chunks)} chunks with {actors} actor(s)")
    expect = previous.name if previous is not None else None  # publish only over what was current at the start
    manifest, version = publish_sharded(
        index_dir, documents, chunks, vectors, n_shards, model, config, str(corpus), expect, say
    )
    return ShardedBuild(manifest, version, documents, chunks, vectors)


def publish_sharded(
    index_dir: Path,
    documents: Sequence[Document],
    chunks: Sequence[Chunk],
    vectors: np.ndarray,
    n_shards: int,
    model: ModelInfo,
    config: IndexConfig,
    source: str | None,
    expect_current: Any = ANY_CURRENT,
    say: Callable[[str], None] = lambda _m: None,
) -> tuple[ShardedManifest, Path]:
    """Split embedded chunks onto shards (Ray tasks) and publish them as one version; `expect_current`, when
    given, is the version CURRENT must still name (None: no index yet), as `index.store.publish_version` takes it."""
    import ray

    pmap = PartitionMap.uniform(n_shards)
    spec = sharded_dense_spec(config.dense_type, len(vectors))
    doc_shard = [pmap.shard_of(d.id) for d in documents]
    shard_of_doc = dict(zip((d.id for d in documents), doc_shard, strict=True))
    seq_of = {d.id: i for i, d in enumerate(documents)}
    by_id = {d.id: d for d in documents}
    datas = []
    for s in range(n_shards):
        rows = [i for i, c in enumerate(chunks) if shard_of_doc[c.doc_id] == s]
        docs = [d for d in documents if shard_of_doc[d.id] == s]
        datas.append(ShardData(s, docs, [seq_of[d.id] for d in docs], [chunks[i] for i in rows], vectors[rows]))
    tmp = new_temp_version(Path(index_dir))
    try:
        stat_task = ray.remote(max_retries=SHARD_TASK_RETRIES)(_stats_task)
        parts = ray.get([stat_task.remote([embedding_text(by_id[c.doc_id], c) for c in d.chunks]) for d in datas])
        stats = CollectionStats.merge(parts)
        stats.save(tmp / STATS_NAME)
        if spec.type is DenseIndexType.IVF_SQ8:
            quantizer = new_dense_index(spec, vectors.shape[1])
            train_dense_index(quantizer, spec, vectors)  # the seeded sample a single-node build trains on
            save_dense_index(quantizer, tmp / QUANTIZER_NAME)
        task = ray.remote(max_retries=SHARD_TASK_RETRIES)(_shard_task).options(runtime_env=_fault_env() or None)
        refs = [task.remote(str(tmp), ray.put(d), spec, stats, config.bm25_k1, config.bm25_b) for d in datas]
        try:
            infos = sorted(ray.get(refs), key=lambda i: i.shard)
        except Exception as err:
            raise ShardBuildError(
                f"building the shards failed ({type(err).__name__}: {str(err).splitlines()[0]}); "
                f"the current index in {index_dir} is unchanged; rerun the build"
            ) from err
        say(f"built {n_shards} shards")
        manifest = ShardedManifest(
            created_at=now_utc(),
            model=model,
            chunking={**config.chunking.to_json(), "title_prefix": True},
            dense={**spec.to_json(), "shared_quantizer": spec.type is DenseIndexType.IVF_SQ8},
            lexical={**config.lexical_json(), "global_statistics": STATS_NAME},
            corpus=CorpusInfo(
                fingerprint=corpus_fingerprint(documents),
                n_documents=len(documents),
                n_chunks=len(chunks),
                source=source,
            ),
            partitions=pmap.to_json(),
            shared=shared_digests(tmp),
            shards=infos,
            next_seq=len(documents),
        )
        name = finish_version(Path(index_dir), tmp, manifest)
        tmp = None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    publish_version(Path(index_dir), name, expect_current=expect_current)
    version = Path(index_dir) / VERSIONS_DIR / name
    say(f"published {version}")
    return manifest, version


# Ray 2.60 resolves a loopback node address to the machine's network address unless it believes it is a
# single-machine (Windows/macOS-style) cluster; this switch makes `_node_ip_address="127.0.0.1"` stick, and every
# Ray listener (GCS, raylet, workers, runtime-env agent) then binds 127.0.0.1 (tests/index/shards check it).
LOOPBACK_ONLY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


# Ray 2.60 gives its raylet a fixed 30 s to register; on the project's 2-core machine, niced under a training
# job, local starts were measured to miss it ("The current node timed out during startup"): start again.
LOCAL_START_ATTEMPTS = 3


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the cluster at `address`, or start a local one bound to loopback only; no dashboard either way."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = not ray_constants.IS_WINDOWS_OR_OSX  # a real cluster: real addresses
        os.environ.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ShardBuildError(f"cannot join the Ray cluster at {address}: {err}") from err
    else:
        from ray._private import ray_constants

        os.environ.update(LOOPBACK_ONLY_ENV)  # read by the raylet, GCS and workers this starts
        # ...and by this process, which read it when `ray` was first imported: set what it derived from it.
        ray_constants.ENABLE_RAY_CLUSTER = False
        for attempt in range(1, LOCAL_START_ATTEMPTS + 1):
            try:
                ray.init(num_cpus=num_cpus, _node_ip_address="127.0.0.1", **kwargs)
                return
            except Exception as err:  # Ray raises a bare Exception when its raylet is not up within 30 s
                ray.shutdown()
                if attempt == LOCAL_START_ATTEMPTS or "timed out during startup" not in str(err):
                    raise ShardBuildError(f"cannot start a local Ray cluster: {err}") from err


def ray_session(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Start a local Ray cluster bound to loopback (or join `address`): no dashboard, no usage stats.

    A context manager's worth of `ray.init` / `ray.shutdown`: use `with ray_session(...):`.
    """
    import contextlib

    import ray

    @contextlib.contextmanager
    def _session():
        started = False
        if not ray.is_initialized():
            init_ray(address, num_cpus)
            started = True
        ray.data.DataContext.get_current().enable_progress_bars = False
        try:
            yield ray
        finally:
            if started:
                ray.shutdown()

    return _session()


class ShardEngine(StrEnum):
    """The distributed engine of `qa index --shards N` (N > 1): Ray is the one there is."""

    RAY = "ray"


def build_sharded(
    corpus: Path,
    index_dir: Path,
    n_shards: int,
    embedder: Any,
    config: IndexConfig,
    fmt: CorpusFormat = CorpusFormat.AUTO,
    on_invalid: InvalidRecordPolicy = InvalidRecordPolicy.RAISE,
    address: str | None = None,
    actors: int | None = None,
    num_gpus: float = 0,
    say: Callable[[str], None] = lambda _m: None,
) -> ShardedBuild:
    """`qa index --shards N`: join the Ray cluster at `address` (or start a loopback-only local one for the
    duration), then `build_sharded_index` with actors built like `embedder` (an `index.embedder.Embedder`).
    `actors` defaults to one per CPU of the cluster."""
    import ray

    embedder.warm_up()
    spec = EmbedderSpec(
        embedder.model_name,
        embedder.batch_size,
        embedder.backend.value,
        None if embedder.onnx_cache_dir is None else str(embedder.onnx_cache_dir),
        embedder.device,
    )
    with ray_session(address):
        n_actors = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        return build_sharded_index(
            corpus,
            index_dir,
            n_shards,
            spec,
            model_info(embedder),
            config,
            fmt,
            on_invalid,
            actors=n_actors,
            num_gpus=num_gpus,
            on_stage=say,
        )
