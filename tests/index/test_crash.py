"""Crashes and bad files: a killed build, a damaged file or a failed write never costs the index or a wrong answer.

- SIGKILL at random moments of a build and before every kind of file operation (scripts/kill_trials.py, short
  variant): the directory still loads and answers exactly as the previous index, or as the new one once the
  switch happened.
- Every index file truncated or with a flipped byte: loading refuses with a message naming the file, and so does
  the service's start-up.
- A write that fails (no space, file too large, no permission) leaves the old index and says why.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

import index.store as store_mod
from common.errors import QAError
from index.documents import Document
from index.embedder import Embedder
from index.errors import IndexCorruptError
from index.retriever import Retriever
from index.store import (
    CURRENT_NAME,
    MANIFEST_NAME,
    IndexConfig,
    IndexWriteError,
    build_index,
    current_version,
    load_index,
)
from qa.pipeline import QAPipeline
from qa.settings import Settings
from service.app import create_app
from tests.service.helpers import service_settings

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    Document("d1", "Sorafenib is a kinase inhibitor. Median overall survival was 10.7 months with sorafenib."),
    Document(
        "d2", "Lenvatinib was non-inferior to sorafenib. The REFLECT trial enrolled 954 patients.", title="REFLECT"
    ),
    Document("d3", "Radioactive iodine treats thyroid cancer. Some tumours become refractory to it."),
]
QUERIES = ["median overall survival sorafenib", "How many patients did REFLECT enrol?", "refractory thyroid cancer"]


def load(path: Path, embedder: Embedder):
    return load_index(path, IndexConfig(), embedder.model_name, embedder.fingerprint)


def answers(path: Path, embedder: Embedder) -> list[list[tuple[str, float]]]:
    retriever = Retriever(load(path, embedder), embedder)
    return [[(p.chunk.id, round(p.score, 6)) for p in retriever.run(q, 5)] for q in QUERIES]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    path = tmp_path_factory.mktemp("crash") / "idx"
    build_index(DOCS, embedder, path, IndexConfig())
    return path


@pytest.fixture()
def index_copy(built: Path, tmp_path: Path) -> Path:
    shutil.copytree(built, tmp_path / "idx")
    return tmp_path / "idx"


def index_files(index_dir: Path) -> list[str]:
    """Every file the loader reads, relative to the index directory: the pointer, the manifest, what it lists."""
    version = current_version(index_dir)
    assert version is not None
    listed = sorted(p.relative_to(index_dir).as_posix() for p in version.rglob("*") if p.is_file())
    return [CURRENT_NAME, *listed]


def damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "empty":
        data = bytearray()
    elif how == "half":
        data = data[: len(data) // 2]
    elif how == "last-byte":
        data = data[:-1]
    else:  # flip one bit at the start, middle or end
        pos = {"flip-start": 0, "flip-middle": len(data) // 2, "flip-end": len(data) - 1}[how]
        data[pos] ^= 0x04
    path.write_bytes(bytes(data))


DAMAGE = ["empty", "half", "last-byte", "flip-start", "flip-middle", "flip-end"]


def test_every_file_truncated_or_flipped_is_refused_naming_it(built: Path, embedder: Embedder, tmp_path: Path) -> None:
    files = index_files(built)
    assert {MANIFEST_NAME, "documents.jsonl", "chunks.jsonl", "dense.faiss"} <= {Path(f).name for f in files}
    assert any(f.split("/")[-2] == "bm25" for f in files if "/" in f)
    checked = 0
    for rel in files:
        for how in DAMAGE:
            trial = tmp_path / f"{checked}"
            shutil.copytree(built, trial)
            damage(trial / rel, how)
            with pytest.raises(QAError) as info:
                load(trial, embedder)
            assert Path(rel).name in str(info.value), f"{rel} ({how}): {info.value}"
            checked += 1
            shutil.rmtree(trial)
    assert checked == len(files) * len(DAMAGE) >= 10 * 6


@pytest.mark.parametrize("name", ["dense.faiss", "chunks.jsonl", "bm25/vocab.index.json", MANIFEST_NAME, CURRENT_NAME])
def test_service_start_up_refuses_a_damaged_index_naming_the_file(
    index_copy: Path, embedder: Embedder, demo_settings: Settings, name: str
) -> None:
    path = index_copy / CURRENT_NAME if name == CURRENT_NAME else current_version(index_copy) / name  # type: ignore[operator]
    damage(path, "flip-middle")
    settings = service_settings(demo_settings, index_dir=index_copy)
    pipeline = QAPipeline(settings, embedder=embedder)
    with (
        pytest.raises(IndexCorruptError, match=Path(name).name.replace(".", r"\.")),
        TestClient(create_app(settings, pipeline)),
    ):
        pass


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("save_dense_index", OSError(errno.ENOSPC, "No space left on device")),
        ("_write_lines", OSError(errno.ENOSPC, "No space left on device")),
        ("_fsync_tree", OSError(errno.EIO, "Input/output error")),
    ],
)
def test_a_failed_write_keeps_the_old_index_and_says_why(
    index_copy: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch, target: str, error: OSError
) -> None:
    before = answers(index_copy, embedder)
    version = current_version(index_copy)

    def fail(*_args: Any, **_kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(store_mod, target, fail)
    with pytest.raises(IndexWriteError, match=rf"{error.strerror}.*the current index is unchanged"):
        build_index([*DOCS, Document("d4", "A new document about cabozantinib.")], embedder, index_copy)
    monkeypatch.undo()
    assert current_version(index_copy) == version
    assert answers(index_copy, embedder) == before
    assert not list((index_copy / "versions").glob(".tmp-*"))


def test_no_permission_to_switch_the_pointer_keeps_the_old_index(
    index_copy: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = answers(index_copy, embedder)
    version = current_version(index_copy)

    def denied(*_args: Any, **_kwargs: Any) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(index_copy / CURRENT_NAME))

    monkeypatch.setattr(store_mod.os, "replace", denied)
    with pytest.raises(IndexWriteError, match="Permission denied"):
        build_index([*DOCS, Document("d4", "A new document.")], embedder, index_copy)
    monkeypatch.undo()
    assert current_version(index_copy) == version
    assert answers(index_copy, embedder) == before
    # The version that could not be published was removed; no pointer temp file is left behind.
    assert sorted(p.name for p in (index_copy / "versions").iterdir()) == [version.name]  # type: ignore[union-attr]
    assert not list(index_copy.glob(f".{CURRENT_NAME}.*"))


def test_a_real_file_size_limit_fails_the_update_with_a_message_and_keeps_the_old_index(
    index_copy: Path, embedder: Embedder
) -> None:
    """No simulation: RLIMIT_FSIZE makes the kernel refuse the write (EFBIG), as a full disk would (ENOSPC)."""
    before = answers(index_copy, embedder)
    version = current_version(index_copy)
    code = textwrap.dedent(
        f"""
        import resource, signal, sys
        from common.errors import QAError
        from index.updates import CorpusUpdate, apply_update
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed by the signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        try:
            apply_update({str(index_copy)!r}, CorpusUpdate(delete=["d3"]), embedder=None)
        except QAError as err:
            print(err, file=sys.stderr)
            sys.exit(2)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "File too large" in proc.stderr and "the current index is unchanged" in proc.stderr
    assert current_version(index_copy) == version
    assert answers(index_copy, embedder) == before
    assert not list((index_copy / "versions").glob(".tmp-*"))


MIN_KILLED = 3
"""Random-moment trials that must have killed a build mid-write (docs/reliability.md: 51 of 100 did)."""
MAX_RANDOM_TRIALS = 30
"""Trials drawn at most before the test fails for never killing a build mid-write."""


def load_kill_trials() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kill_trials", ROOT / "scripts" / "kill_trials.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["kill_trials"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def kill_trials(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Any:
    module = load_kill_trials()
    lines: list[str] = []
    with module.KillTrials(tmp_path_factory.mktemp("kills"), embedder, seed=7, say=lines.append) as trials:
        trials.prepare()
        yield trials
    print("\n".join(["", *lines]))


@pytest.mark.slow
def test_sigkill_at_random_moments_of_a_build_never_breaks_the_index(kill_trials: Any) -> None:
    """Builds killed at seeded random moments of their write phase: each leaves A or B, whole.

    Delays span the write phase as calibrated once, so a build may finish before its kill (it must then serve B,
    checked): when load shortens the phase against its calibration, more trials are drawn until at least
    `MIN_KILLED` builds were really killed, so the test always exercises kills, never just finished builds.
    """
    outcomes = kill_trials.random_trials(10, "write")
    while sum(o.build == "killed" for o in outcomes) < MIN_KILLED and len(outcomes) < MAX_RANDOM_TRIALS:
        outcomes += kill_trials.random_trials(1, "write")
    assert [o for o in outcomes if not o.ok] == []
    assert sum(o.build == "killed" for o in outcomes) >= MIN_KILLED, f"{len(outcomes)} trials"


@pytest.mark.slow
def test_sigkill_before_each_switching_file_operation_never_breaks_the_index(kill_trials: Any) -> None:
    """Killed just before (and after) each rename and replace, and a few other operations drawn at random."""
    names = [name for name, _ in kill_trials.report.build_ops]
    assert "os.rename" in names and "os.replace" in names, names
    outcomes = kill_trials.step_trials(kill_trials.critical_steps(extra=2))
    assert [o for o in outcomes if not o.ok] == []
    served = {o.served for o in outcomes}
    assert served == {"previous", "new"}, "kills before and after the switch were both hit"
    rebuilt = kill_trials.then_a_clean_build_succeeds()
    assert rebuilt.ok and rebuilt.served == "new"


@pytest.mark.slow
def test_sigkill_of_a_real_qa_index_process_while_it_writes(kill_trials: Any) -> None:
    outcomes = kill_trials.qa_index_trials(1)
    assert [o for o in outcomes if not o.ok] == []
