"""Serving a sharded index: fan a question out to the shards, merge each side's top k globally, then fuse
and read exactly as the single-node path does.

`ShardedIndex` stands where `index.store.CorpusIndex` stands: documents and chunks in the single index's global
order, and `dense` / `lexical` objects with the single-node interfaces whose searches fan out to the shards and
merge by (score, global chunk position). The stock `index.retriever.Retriever` therefore fuses over them
unchanged; `ShardedRetriever` adds only the report of shards that did not answer in time (`missing_shards` on
each result list), so a partial result is flagged instead of failing.

Two backends: shards searched in this process by a thread pool (`local`, the default for `qa ask` and `qa eval`),
or by one Ray actor per shard (`ray`, for `qa serve` over shards on several machines).
"""

from __future__ import annotations

import contextvars
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from index.dense import search_dense
from index.documents import Chunk, Document
from index.manifest import MANIFEST_NAME
from index.retriever import RetrievedPassage, Retriever
from index.shards.layout import (
    ShardedManifest,
    global_order,
    load_shard_search,
    read_shard_content,
    read_sharded_manifest,
    verify_files,
)
from index.shards.lexical import STATS_NAME, CollectionStats
from index.store import VERSIONS_DIR

log = logging.getLogger(__name__)

# How long a question waits for a shard before answering without it (flagged partial). A shard's own search
# is ~1 ms flat at 20k vectors and 8.3 ms IVF-SQ8 at 1M (docs/performance.md), and a Ray actor round trip
# adds 7-8 ms on a busy box (the spike): 2 s is two orders above a healthy shard and still inside
# a request a user waits for.
DEFAULT_SHARD_TIMEOUT_S = 2.0
# Concurrent searches per shard in the local backend: FAISS and BM25 release the GIL in their inner loops, and
# the service answers at most `ask_concurrency` questions at once anyway; two keeps a shard busy while it waits.
THREADS_PER_SHARD = 2


class ShardBackend(StrEnum):
    LOCAL = "local"
    RAY = "ray"


class ShardSearcher:
    """One shard's FAISS and BM25, answering in local chunk positions; also the body of a Ray shard actor."""

    def __init__(self, index_dir: str, version: str, shard: int) -> None:
        version_dir = Path(index_dir) / VERSIONS_DIR / version
        manifest = ShardedManifest.model_validate_json((version_dir / MANIFEST_NAME).read_bytes())
        self.shard = shard
        self.dense, self.lexical = load_shard_search(version_dir, manifest, shard)

    def search_dense(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return search_dense(self.dense, queries, k)

    def search_lexical(self, query: str, k: int) -> list[tuple[int, float]]:
        return self.lexical.search(query, k)

    def ping(self) -> int:
        return self.shard


_MISSING: contextvars.ContextVar[set[int] | None] = contextvars.ContextVar("missing_shards", default=None)


class _FanOut:
    """Calls every shard's searcher and waits at most `timeout_s`; shards that fail or are late are recorded
    in the calling question's missing set and left out of the merge."""

    def __init__(self, n_shards: int, timeout_s: float) -> None:
        self.n_shards = n_shards
        self.timeout_s = timeout_s

    def call(self, method: str, *args: Any) -> dict[int, Any]:
        raise NotImplementedError

    def ready(self) -> dict[int, bool]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the shards' resources (threads or actors)."""

    def _miss(self, shard: int, why: str) -> None:
        log.warning("shard %d did not answer: %s", shard, why)
        missing = _MISSING.get()
        if missing is not None:
            missing.add(shard)


class LocalFanOut(_FanOut):
    """Shards searched in this process. Each shard has its own small thread pool, so a stuck shard queues only
    its own searches and never starves the others' threads."""

    def __init__(self, searchers: Sequence[Any], timeout_s: float) -> None:
        super().__init__(len(searchers), timeout_s)
        self.searchers = list(searchers)
        self.pools = [
            ThreadPoolExecutor(max_workers=THREADS_PER_SHARD, thread_name_prefix=f"shard{s}")
            for s in range(len(searchers))
        ]

    def call(self, method: str, *args: Any) -> dict[int, Any]:
        deadline = time.monotonic() + self.timeout_s
        futures = {s: self.pools[s].submit(getattr(self.searchers[s], method), *args) for s in range(self.n_shards)}
        out: dict[int, Any] = {}
        for s, fut in futures.items():
            try:
                out[s] = fut.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                fut.cancel()
                self._miss(s, f"no answer in {self.timeout_s} s")
            except Exception as err:
                self._miss(s, f"{type(err).__name__}: {err}")
        return out

    def ready(self) -> dict[int, bool]:
        token = _MISSING.set(set())
        try:
            got = self.call("ping")
        finally:
            _MISSING.reset(token)
        return {s: s in got for s in range(self.n_shards)}

    def close(self) -> None:
        for pool in self.pools:
            pool.shutdown(wait=False, cancel_futures=True)


class RayFanOut(_FanOut):
    """One Ray actor per shard (each loads its shard once); Ray must be initialised by the caller."""

    def __init__(self, index_dir: Path, version: str, n_shards: int, timeout_s: float) -> None:
        import ray

        super().__init__(n_shards, timeout_s)
        actor = ray.remote(num_cpus=0)(ShardSearcher)
        self.actors = [actor.remote(str(index_dir), version, s) for s in range(n_shards)]

    def call(self, method: str, *args: Any) -> dict[int, Any]:
        import ray

        refs = {getattr(a, method).remote(*args): s for s, a in enumerate(self.actors)}
        done, _ = ray.wait(list(refs), num_returns=len(refs), timeout=self.timeout_s)
        out: dict[int, Any] = {}
        for ref in done:
            try:
                out[refs[ref]] = ray.get(ref)
            except Exception as err:  # the actor died, or its search raised
                self._miss(refs[ref], f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        for ref, s in refs.items():
            if s not in out and ref not in done:
                self._miss(s, f"no answer in {self.timeout_s} s")
        return out

    def ready(self) -> dict[int, bool]:
        missing = _MISSING.set(set())
        try:
            got = self.call("ping")
        finally:
            _MISSING.reset(missing)
        return {s: s in got for s in range(self.n_shards)}

    def close(self) -> None:
        import ray

        for a in self.actors:
            ray.kill(a)


class ShardedDense:
    """The `faiss.Index` face `Retriever` uses (`ntotal`, `search`), fanned out and merged: per query, every
    shard's top k by (-score, global position), the global top k of those."""

    def __init__(self, fanout: _FanOut, positions: Sequence[np.ndarray], ntotal: int, dim: int) -> None:
        self.fanout, self.positions, self.ntotal, self.d = fanout, positions, ntotal, dim

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        results = self.fanout.call("search_dense", np.ascontiguousarray(queries, dtype=np.float32), k)
        n = len(queries)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        ids = np.full((n, k), -1, dtype=np.int64)
        for q in range(n):
            cands = [
                (float(sc), int(self.positions[s][int(i)]))
                for s, (sh_scores, sh_ids) in results.items()
                for sc, i in zip(sh_scores[q], sh_ids[q], strict=True)
                if i >= 0
            ]
            cands.sort(key=lambda c: (-c[0], c[1]))
            for r, (sc, pos) in enumerate(cands[:k]):
                scores[q, r], ids[q, r] = sc, pos
        return scores, ids


class ShardedLexical:
    """The `LexicalIndex.search` face, fanned out: BM25 shards score with global statistics, so merging their
    top k by (-score, global position) is the single index's top k."""

    def __init__(self, fanout: _FanOut, positions: Sequence[np.ndarray], stats: CollectionStats | None = None) -> None:
        self.fanout, self.positions = fanout, positions
        self.stats = stats or CollectionStats(sum(len(p) for p in positions), 0, {})

    @property
    def n_chunks(self) -> int:
        return self.stats.n_chunks

    def document_frequencies(self, terms: Iterable[str]) -> dict[str, int]:
        """From the collection statistics every shard scores with (the build's; no fan-out)."""
        return {t: self.stats.df[t] for t in terms if t in self.stats.df}

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        if k <= 0:
            return []
        results = self.fanout.call("search_lexical", query, k)
        cands = [(int(self.positions[s][i]), sc) for s, hits in results.items() for i, sc in hits]
        cands.sort(key=lambda c: (-c[1], c[0]))
        return cands[:k]


@dataclass
class ShardedIndex:
    """A loaded sharded index, in `CorpusIndex`'s shape: documents and chunks in global order, fan-out searches."""

    path: Path
    manifest: ShardedManifest
    documents: dict[str, Document]
    chunks: list[Chunk]
    dense: ShardedDense
    lexical: ShardedLexical
    fanout: _FanOut
    _by_doc: dict[str, list[Chunk]] = field(default_factory=dict, init=False, repr=False)

    def document(self, doc_id: str) -> Document | None:
        return self.documents.get(doc_id)

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        if not self._by_doc:
            for c in self.chunks:
                self._by_doc.setdefault(c.doc_id, []).append(c)
        return self._by_doc.get(doc_id, [])

    def shard_status(self) -> dict[int, bool]:
        """Which shards answer now (what `/ready` reports)."""
        return self.fanout.ready()

    def close(self) -> None:
        self.fanout.close()


def _collection_stats(version: Path) -> CollectionStats | None:
    path = version / STATS_NAME
    return CollectionStats.load(path) if path.is_file() else None


def load_sharded_index(
    index_dir: Path,
    backend: ShardBackend | str = ShardBackend.LOCAL,
    timeout_s: float = DEFAULT_SHARD_TIMEOUT_S,
    verify: bool = True,
    searcher_factory: Callable[[Path, str, int], Any] | None = None,
) -> ShardedIndex:
    """Load the current sharded index: every file checked against the manifest, documents and chunks in global
    order, and a searcher per shard (in-process, or Ray actors). `searcher_factory(index_dir, version, shard)`
    replaces the in-process searchers (tests use it to stand in a shard that fails or is slow)."""
    index_dir = Path(index_dir)
    version, manifest = read_sharded_manifest(index_dir)
    verify_files(version, manifest.shared, verify)
    for info in manifest.shards:
        verify_files(version, info.files, verify)
    contents = [read_shard_content(version, info) for info in manifest.shards]
    documents: dict[str, Document] = {}
    chunks: list[Chunk] = []
    positions = [np.zeros(len(c.chunks), dtype=np.int64) for c in contents]
    starts = []
    for content in contents:
        first: dict[str, int] = {}
        for local, ch in enumerate(content.chunks):
            first.setdefault(ch.doc_id, local)
        starts.append(first)
    for s, i in global_order(contents):
        doc = contents[s].documents[i]
        documents[doc.id] = doc
        local = starts[s].get(doc.id)
        if local is None:
            continue
        while local < len(contents[s].chunks) and contents[s].chunks[local].doc_id == doc.id:
            positions[s][local] = len(chunks)
            chunks.append(contents[s].chunks[local])
            local += 1
    if len(chunks) != manifest.corpus.n_chunks or len(documents) != manifest.corpus.n_documents:
        raise ValueError(f"{version}: shards hold {len(chunks)} chunks, the manifest says {manifest.corpus.n_chunks}")
    backend = ShardBackend(backend)
    n = len(manifest.shards)
    if backend is ShardBackend.RAY:
        fanout: _FanOut = RayFanOut(index_dir, version.name, n, timeout_s)
    else:
        make = searcher_factory or (lambda d, v, s: ShardSearcher(str(d), v, s))
        fanout = LocalFanOut([make(index_dir, version.name, s) for s in range(n)], timeout_s)
    return ShardedIndex(
        version,
        manifest,
        documents,
        chunks,
        ShardedDense(fanout, positions, len(chunks), manifest.model.dimension),
        ShardedLexical(fanout, positions, _collection_stats(version)),
        fanout,
    )


class PassageList(list):
    """A question's passages, with the shards that did not answer (empty when every shard did)."""

    missing_shards: tuple[int, ...] = ()


class ShardedRetriever(Retriever):
    """`Retriever` over a ShardedIndex: same fusion and ordering; each result list says which shards, if any,
    were left out because they did not answer in time."""

    def run_batch(self, queries, top_k=5, mode="hybrid", query_vectors=None, timings=None):  # type: ignore[override]
        token = _MISSING.set(set())
        try:
            out = super().run_batch(queries, top_k, mode, query_vectors, timings)
            missing = tuple(sorted(_MISSING.get() or ()))
        finally:
            _MISSING.reset(token)
        results = []
        for passages in out:
            plist = PassageList(passages)
            plist.missing_shards = missing
            results.append(plist)
        return results


def missing_shards(passages: Sequence[RetrievedPassage]) -> tuple[int, ...]:
    """The shards a retrieval went without (() for a complete one, and for a single-node index)."""
    return tuple(getattr(passages, "missing_shards", ()))


def shard_settings_from_env() -> tuple[ShardBackend, float]:
    """QA_SHARD_BACKEND (local|ray) and QA_SHARD_TIMEOUT_S, read where a sharded index is loaded."""
    backend = os.environ.get("QA_SHARD_BACKEND", ShardBackend.LOCAL.value)
    try:
        kind = ShardBackend(backend)
    except ValueError:
        raise ValueError(f"QA_SHARD_BACKEND={backend!r}: choose local or ray") from None
    raw = os.environ.get("QA_SHARD_TIMEOUT_S", str(DEFAULT_SHARD_TIMEOUT_S))
    try:
        timeout = float(raw)
    except ValueError:
        raise ValueError(f"QA_SHARD_TIMEOUT_S={raw!r}: not a number of seconds") from None
    if timeout <= 0:
        raise ValueError(f"QA_SHARD_TIMEOUT_S={raw!r}: must be > 0")
    return kind, timeout


ShardedIndex.retriever_class = ShardedRetriever  # what QAPipeline.make_snapshot builds over a sharded index


def check_sharded_compatible(manifest: ShardedManifest, config: Any) -> None:
    """Refuse a sharded index built with other chunking, BM25 settings or dense kind, naming each difference."""
    from index.errors import IndexMismatchError
    from index.shards.layout import sharded_dense_spec

    problems = []
    want_chunking = {**config.chunking.to_json(), "title_prefix": True}
    if manifest.chunking != want_chunking:
        problems.append(f"chunking: index has {manifest.chunking}, configured {want_chunking}")
    lexical = {k: v for k, v in manifest.lexical.items() if k != "global_statistics"}
    if lexical != config.lexical_json():
        problems.append(f"lexical index: index has {lexical}, configured {config.lexical_json()}")
    try:
        want = sharded_dense_spec(config.dense_type, manifest.corpus.n_chunks).type.value
    except IndexMismatchError as err:
        problems.append(str(err))
    else:
        if manifest.dense.get("type") != want:
            problems.append(f"dense index: index has {manifest.dense.get('type')!r}, configured {want!r}")
    if problems:
        raise IndexMismatchError(
            "the sharded index was built with other settings; rebuild it with `qa index --shards` or change the "
            "settings:\n  - " + "\n  - ".join(problems)
        )


def load_sharded_for(index_dir: Path, config: Any, check_model: Callable[[ShardedManifest], None]) -> ShardedIndex:
    """What QAPipeline loads for a sharded index: the model checked by `check_model`, the settings by
    `check_sharded_compatible`, the backend and timeout from QA_SHARD_BACKEND / QA_SHARD_TIMEOUT_S (a `ray`
    backend joins QA_RAY_ADDRESS, or starts a loopback-only local cluster)."""
    _, manifest = read_sharded_manifest(Path(index_dir))
    check_model(manifest)
    check_sharded_compatible(manifest, config)
    backend, timeout = shard_settings_from_env()
    if backend is ShardBackend.RAY:
        import ray

        if not ray.is_initialized():
            from index.shards.build import init_ray

            init_ray(os.environ.get("QA_RAY_ADDRESS") or None)
    return load_sharded_index(Path(index_dir), backend, timeout)
