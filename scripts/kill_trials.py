#!/usr/bin/env python3
"""SIGKILL index builds at random moments; the index directory must still load and answer as before.

Each trial starts from a copy of a complete index of corpus A (the "previous" index) and builds corpus B over
it, killing the build with SIGKILL part-way. Afterwards the directory must load (every file verified against its
manifest) and answer a few probe questions exactly as one of the two complete indexes does: A when the kill
came before the switch of CURRENT, B when after. Nothing else is acceptable: no error, no half-written index.

Three kinds of kill:

- random (fast): a worker process loads the model once and forks one child per trial; the child runs
  `build_index` (what `qa index` runs) and the worker SIGKILLs it after a seeded random delay, counted either
  from the moment the new version's folder appears (the write phase, where a kill can leave a file half-written)
  or from the start (anywhere in a build).
- step: the child SIGKILLs itself just before its k-th file operation on the index directory (mkdir, open,
  fsync, rename, replace, unlink, FAISS write, ...) for every k, so every boundary between writes is hit.
- qa-index: a fresh `qa index` process per trial, SIGKILLed once it starts writing plus a random delay (slow:
  each loads the model).

    .venv/bin/python scripts/kill_trials.py                # 100 + 50 random kills, one before every file op
    .venv/bin/python scripts/kill_trials.py --random 20 --random-any 0 --steps none --qa-index 20 --seed 7
    .venv/bin/python scripts/kill_trials.py --json var/reliability/kill_trials.json

tests/index/test_crash.py runs a short variant of the same trials in CI.
"""

from __future__ import annotations

import argparse
import builtins
import io
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROBES = ["What was the median overall survival with STRIDE?", "Which kinases does lenvatinib inhibit?"]
# Small abstracts, so one build takes about a second and a trial a little more.
A_IDS = ["abs-02", "abs-03", "abs-11"]
B_EXTRA_IDS = ["abs-19"]


@dataclass
class Outcome:
    kind: str  # random-write, random-any, step, rebuild-after-kill, qa-index
    param: float  # the delay in seconds, or the step number
    build: str  # killed, finished, failed
    served: str  # previous, new, broken
    ok: bool
    detail: str = ""


@dataclass
class Report:
    seed: int
    build_seconds: float = 0.0
    build_ops: list[tuple[str, float]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def write_window(self) -> tuple[float, float]:
        """From the first file operation on the index directory to the end of the build."""
        return (self.build_ops[0][1], self.build_seconds) if self.build_ops else (0.0, self.build_seconds)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def summary(self) -> dict[str, Any]:
        kinds = sorted({o.kind for o in self.outcomes})
        return {
            "seed": self.seed,
            "trials": len(self.outcomes),
            "survived": sum(o.ok for o in self.outcomes),
            "build_seconds": round(self.build_seconds, 3),
            "build_file_operations": len(self.build_ops),
            "write_phase_seconds": round(self.write_window[1] - self.write_window[0], 3) if self.build_ops else 0,
            "by_kind": {
                k: {
                    "trials": sum(o.kind == k for o in self.outcomes),
                    "killed": sum(o.kind == k and o.build == "killed" for o in self.outcomes),
                    "served_previous": sum(o.kind == k and o.served == "previous" for o in self.outcomes),
                    "served_new": sum(o.kind == k and o.served == "new" for o in self.outcomes),
                }
                for k in kinds
            },
            "failures": [asdict(o) for o in self.failures],
        }


# ---------------------------------------------------------------------------------------------------------------
# The worker: loads the model once, forks a build per request, kills it when asked.


def _die_before_step(step: int, index_dir: Path, t0: float) -> list[tuple[str, float]]:
    """Count file operations on `index_dir` in this (child) process; SIGKILL ourselves just before op `step`
    (never, for step 0). Returns the list the operations are recorded in: (name, seconds since `t0`)."""
    import faiss

    root = os.path.realpath(index_dir)
    ops: list[tuple[str, float]] = []

    def touches(target: Any) -> bool:
        if isinstance(target, int):  # a file descriptor: only the store fsyncs
            return True
        try:
            return os.path.realpath(os.fspath(target)).startswith(root)
        except TypeError:
            return False

    def wrap(owner: Any, name: str, arg: int = 0) -> None:
        real = getattr(owner, name)

        def hooked(*args: Any, **kwargs: Any) -> Any:
            if len(args) > arg and touches(args[arg]):
                ops.append((f"{owner.__name__}.{name}", time.perf_counter() - t0))
                if len(ops) == step:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        setattr(owner, name, hooked)

    for name in ("mkdir", "open", "rename", "replace", "unlink", "rmdir", "fsync"):
        wrap(os, name)
    wrap(io, "open")
    wrap(builtins, "open")
    wrap(shutil, "rmtree")
    wrap(faiss, "write_index", arg=1)
    return ops


def _child_build(corpus: Path, index_dir: Path, embedder: Any, step: int | None, report_fd: int, t0: float) -> None:
    """The forked child: build, report its file operations on `report_fd` (JSON), exit without cleanup."""
    from index.ingest import load_corpus
    from index.store import IndexConfig, build_index

    code = 0
    ops: list[tuple[str, float]] = []
    try:
        docs = load_corpus(corpus).documents
        if step is not None:
            ops = _die_before_step(step, index_dir, t0)
        build_index(docs, embedder, index_dir, IndexConfig())
    except BaseException as err:
        sys.stderr.write(f"build failed: {type(err).__name__}: {err}\n")
        code = 3
    with os.fdopen(report_fd, "w") as fh:
        json.dump(ops, fh)
    sys.stderr.flush()
    os._exit(code)


def worker_main() -> None:
    """Read one JSON request per line, answer one JSON line: {corpus, index_dir, delay?, step?}."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch  # before any model code: a single thread, so forked children never inherit an OpenMP pool

    torch.set_num_threads(1)
    from index.embedder import Embedder

    embedder = Embedder()
    embedder.warm_up()
    _ = embedder.fingerprint
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        read_fd, write_fd = os.pipe()
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _child_build(Path(req["corpus"]), Path(req["index_dir"]), embedder, req.get("step"), write_fd, t0)
        os.close(write_fd)
        status: int | None = None
        if req.get("delay") is not None or req.get("write_delay") is not None:
            # `delay` counts from the fork; `write_delay` from the moment the new version's folder appears.
            versions = Path(req["index_dir"]) / "versions"
            armed = req.get("delay") is not None
            deadline = t0 + float(req.get("delay") or 0.0)
            while not armed or time.perf_counter() < deadline:
                done, st = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = st
                    break
                if not armed and any(versions.glob(".tmp-*")):
                    armed, deadline = True, time.perf_counter() + float(req["write_delay"])
                time.sleep(0.0005)
            if status is None:
                os.kill(pid, signal.SIGKILL)
        if status is None:
            _, status = os.waitpid(pid, 0)
        elapsed = time.perf_counter() - t0
        with os.fdopen(read_fd) as fh:
            report = fh.read().strip()
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
            build = "killed"
        else:
            build = "finished" if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else "failed"
        ops = json.loads(report) if report else None
        print(json.dumps({"build": build, "elapsed": elapsed, "ops": ops}), flush=True)


# ---------------------------------------------------------------------------------------------------------------
# The driver: prepares the two corpora, runs trials, verifies each directory.


def _close(a: Any, b: Any, tol: float = 1e-4) -> bool:
    """Equal structures; floats within `tol` (a build in another process may differ in the last bits)."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b, abs_tol=tol)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class KillTrials:
    """Owns a work folder, a worker process, and a pipeline (sharing `embedder`) that verifies each trial."""

    def __init__(self, workdir: Path, embedder: Any, seed: int = 1, say: Callable[[str], None] = print) -> None:
        self.workdir = Path(workdir)
        self.embedder = embedder
        self.rng = random.Random(seed)
        self.report = Report(seed)
        self.say = say
        self.worker: subprocess.Popen[str] | None = None
        self.expected: dict[str, list[Any]] = {}
        self.previous_fp = ""
        self.new_fp = ""
        self.corpus_b = self.workdir / "b.jsonl"
        self.golden_a = self.workdir / "golden-a"

    # -- set-up ----------------------------------------------------------------------------------------------
    def __enter__(self) -> KillTrials:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
        self.worker = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=self.workdir,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.worker is not None:
            assert self.worker.stdin is not None
            self.worker.stdin.close()
            try:
                self.worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()

    def _ask(self, **req: Any) -> dict[str, Any]:
        assert self.worker is not None and self.worker.stdin is not None and self.worker.stdout is not None
        self.worker.stdin.write(json.dumps(req) + "\n")
        self.worker.stdin.flush()
        line = self.worker.stdout.readline()
        if not line:
            raise RuntimeError(f"the kill-trial worker died (exit {self.worker.poll()})")
        return json.loads(line)

    def _wait_ready(self) -> None:
        assert self.worker is not None and self.worker.stdout is not None
        line = self.worker.stdout.readline()
        if not line or not json.loads(line).get("ready"):
            raise RuntimeError(f"the kill-trial worker did not start (exit {self.worker.poll()})")

    def prepare(self) -> None:
        """Corpora A and B; the golden index of A (by the worker); B's build time and steps; expected answers."""
        from index.ingest import load_corpus
        from index.store import load_index
        from qa.pipeline import QAPipeline
        from qa.settings import BUILTIN_CORPUS, Settings

        docs = {d.id: d for d in load_corpus(BUILTIN_CORPUS).documents}
        a = [docs[i] for i in A_IDS]
        changed = a[0].text.replace("16.43 months", "17.25 months")
        b = [type(a[0])(a[0].id, changed, a[0].title, a[0].meta), *a[1:], *(docs[i] for i in B_EXTRA_IDS)]
        corpus_a = self.workdir / "a.jsonl"
        for path, rows in ((corpus_a, a), (self.corpus_b, b)):
            path.write_text("".join(json.dumps(d.to_json(), ensure_ascii=False) + "\n" for d in rows), "utf-8")
        self._wait_ready()
        shutil.rmtree(self.golden_a, ignore_errors=True)
        if self._ask(corpus=str(corpus_a), index_dir=str(self.golden_a), step=0)["build"] != "finished":
            raise RuntimeError("building the previous index failed")
        golden_b = self.workdir / "golden-b"
        shutil.copytree(self.golden_a, golden_b)
        calib = self._ask(corpus=str(self.corpus_b), index_dir=str(golden_b), step=0)
        if calib["build"] != "finished":
            raise RuntimeError("building the new index failed")
        self.report.build_seconds = calib["elapsed"]
        self.report.build_ops = [(name, t) for name, t in calib["ops"]]

        self.pipeline = QAPipeline(Settings(index_dir=self.golden_a, _env_file=None), embedder=self.embedder)
        self.pipeline.warm_up()
        config = self.pipeline.settings.index_config()
        self.load: Callable[[Path], Any] = lambda d: load_index(
            d, config, self.embedder.model_name, self.embedder.fingerprint
        )
        for golden in (self.golden_a, golden_b):
            index = self.load(golden)
            self.expected[index.manifest.fingerprint] = self._answers(index)
        self.previous_fp = self.load(self.golden_a).manifest.fingerprint
        self.new_fp = self.load(golden_b).manifest.fingerprint
        assert self.previous_fp != self.new_fp
        start, end = self.report.write_window
        self.say(
            f"prepared: a build of B takes {end:.2f} s, the last {end - start:.2f} s of it writing "
            f"({len(self.report.build_ops)} file operations on the index directory)"
        )

    def _answers(self, index: Any) -> list[Any]:

        snapshot = self.pipeline.make_snapshot(index)
        out = []
        for q in PROBES:
            result = self.pipeline.run(q, snapshot=snapshot).to_dict()
            result.pop("took_ms")
            out.append(result)
        return out

    # -- trials ----------------------------------------------------------------------------------------------
    @contextmanager
    def _trial_dir(self) -> Iterator[Path]:
        target = self.workdir / "trial"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self.golden_a, target)
        yield target

    def _verify(self, kind: str, param: float, build: str, index_dir: Path) -> Outcome:
        try:
            index = self.load(index_dir)
        except Exception as err:
            return Outcome(kind, param, build, "broken", False, f"{type(err).__name__}: {err}")
        fp = index.manifest.fingerprint
        served = {self.previous_fp: "previous", self.new_fp: "new"}.get(fp)
        if served is None:
            return Outcome(kind, param, build, "broken", False, f"unknown index fingerprint {fp}")
        if not _close(self._answers(index), self.expected[fp]):
            return Outcome(kind, param, build, served, False, "answers differ from the complete index's")
        if build == "finished" and served != "new":
            return Outcome(kind, param, build, served, False, "the build finished but the old index is served")
        return Outcome(kind, param, build, served, True)

    def _record(self, outcome: Outcome) -> Outcome:
        self.report.outcomes.append(outcome)
        mark = "ok " if outcome.ok else "FAIL"
        self.say(
            f"  {mark} {outcome.kind} {outcome.param:g}: {outcome.build}, serves {outcome.served} {outcome.detail}"
        )
        return outcome

    def random_trials(self, n: int, phase: str = "write") -> list[Outcome]:
        """Kills after seeded random delays: in the write phase (from the moment the new version's folder appears,
        over the write phase's calibrated length), or anywhere in a build ("any", to a little past its end). A
        build that finishes first must serve B."""
        out = []
        start, end = self.report.write_window
        for _ in range(n):
            if phase == "write":
                req = {"write_delay": round(self.rng.uniform(0, end - start), 4)}
            else:
                req = {"delay": round(self.rng.uniform(0, end * 1.1), 4)}
            with self._trial_dir() as d:
                build = self._ask(corpus=str(self.corpus_b), index_dir=str(d), **req)["build"]
                out.append(self._record(self._verify(f"random-{phase}", next(iter(req.values())), build, d)))
        return out

    def critical_steps(self, extra: int) -> list[int]:
        """The operations around each rename and replace (where a version or the pointer switches), plus `extra`
        others drawn at random: a short but pointed sample of `step_trials`."""
        names = [name for name, _ in self.report.build_ops]
        n = len(names)
        picked = {
            k for i, name in enumerate(names, start=1) if name.endswith(("rename", "replace")) for k in (i, i + 1)
        }
        rest = [k for k in range(1, n + 1) if k not in picked]
        picked |= set(self.rng.sample(rest, min(extra, len(rest))))
        return sorted(k for k in picked if 1 <= k <= n)

    def step_trials(self, steps: Sequence[int]) -> list[Outcome]:
        out = []
        for k in steps:
            with self._trial_dir() as d:
                build = self._ask(corpus=str(self.corpus_b), index_dir=str(d), step=k)["build"]
                out.append(self._record(self._verify("step", k, build, d)))
        return out

    def then_a_clean_build_succeeds(self) -> Outcome:
        """After a killed build, the next one completes over its leftovers."""
        with self._trial_dir() as d:
            start, end = self.report.write_window
            self._ask(corpus=str(self.corpus_b), index_dir=str(d), write_delay=(end - start) / 2)
            build = self._ask(corpus=str(self.corpus_b), index_dir=str(d), step=0)["build"]
            return self._record(self._verify("rebuild-after-kill", 0, build, d))

    def qa_index_trials(self, n: int, timeout: float = 300) -> list[Outcome]:
        """Real `qa index` processes, killed once the new version's temporary folder appears, plus 0-200 ms."""
        out = []
        for _ in range(n):
            delay = self.rng.uniform(0, 0.2)
            with self._trial_dir() as d:
                env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
                cmd = [sys.executable, "-m", "cli", "index", "--corpus", str(self.corpus_b), "--index-dir", str(d)]
                # the same embedder as the golden indexes and the checks, whatever the service's default backend
                cmd += ["--embedding-backend", self.embedder.backend.value]
                proc = subprocess.Popen(
                    cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=self.workdir
                )
                deadline = time.monotonic() + timeout
                while proc.poll() is None and time.monotonic() < deadline:
                    if any((d / "versions").glob(".tmp-*")):
                        time.sleep(delay)
                        break
                    time.sleep(0.002)
                proc.send_signal(signal.SIGKILL)
                code = proc.wait()
                build = "killed" if code == -signal.SIGKILL else ("finished" if code == 0 else "failed")
                out.append(self._record(self._verify("qa-index", round(delay, 4), build, d)))
        return out


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["worker"]:
        worker_main()
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--random", type=int, default=100, help="Trials killed at a random moment of the write phase (100)."
    )
    parser.add_argument("--random-any", type=int, default=50, help="Trials killed anywhere in a build (50).")
    parser.add_argument(
        "--steps", default="all", help="'all' (every file operation of a build), 'none', or a count to sample."
    )
    parser.add_argument("--qa-index", type=int, default=0, help="Trials that kill real `qa index` processes (0).")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None, help="Scratch folder (default: a temporary one).")
    parser.add_argument("--json", type=Path, default=None, help="Write the report here as well.")
    opts = parser.parse_args(args)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    from index.embedder import Embedder

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kill-trials-") as tmp:
        workdir = opts.workdir or Path(tmp)
        with KillTrials(workdir, Embedder(), opts.seed) as trials:
            trials.embedder.warm_up()
            trials.prepare()
            trials.random_trials(opts.random, "write")
            trials.random_trials(opts.random_any, "any")
            n = len(trials.report.build_ops)
            if opts.steps == "all":
                trials.step_trials(range(1, n + 1))
            elif opts.steps != "none":
                trials.step_trials(sorted(trials.rng.sample(range(1, n + 1), min(n, int(opts.steps)))))
            trials.then_a_clean_build_succeeds()
            if opts.qa_index:
                trials.qa_index_trials(opts.qa_index)
        summary = {**trials.report.summary(), "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(summary, indent=2))
    if opts.json:
        opts.json.parent.mkdir(parents=True, exist_ok=True)
        opts.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
