"""One reader from several checkpoints of the same fine-tuning lineage: the uniform average of their weights.

Checkpoints of one fine-tuning run, or of runs that each continued from the one before, lie in one basin of the
loss; their average often scores better than each of them (checkpoint averaging in machine translation, "model
soups", Wortsman et al. 2022) and costs nothing when reading: the averaged reader has the same shape and speed.
Which checkpoints to average is chosen on dev data, like any other setting, and the result is evaluated again
(`qa average-readers --dev`) before it may replace the shipped reader.

A source is a reader folder (its `model.safetensors`: the dev-best weights `qa train-reader` kept) or a run's
checkpoint file (`FOLDER/checkpoint/state.pt`: the weights of the run's last step). Every source must have the
same tensors with the same shapes; the averaged folder takes config and tokenizer from the first folder source,
and its `training.json` is that source's report with `weight_average` (each source, its step and the digest of
its weights; for a folder trained by another run than the first, that run's own report, so that its command can
be given again) and `final_dev` (the average's own scores) set.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.training.trainer import TrainingError, load_checkpoint, score_saved_reader

if TYPE_CHECKING:
    import torch

WEIGHTS_FILE = "model.safetensors"
CARRIED_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
"""What the averaged folder copies from the first folder source besides the weights it writes."""


def _is_checkpoint(source: Path) -> bool:
    return source.is_file() and source.suffix == ".pt"


def load_source(source: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A source's weights as fp32 tensors, and what the report says of it (path, kind, step, weights digest)."""
    import torch
    from safetensors.torch import load_file

    if _is_checkpoint(source):
        state = load_checkpoint(source)
        if "model" not in state:
            raise TrainingError(f"{source} is not a checkpoint of qa train-reader (it holds no 'model' weights)")
        weights, kind, step = state["model"], "last step of its run", state.get("step")
    elif (source / WEIGHTS_FILE).is_file():
        weights, kind = load_file(str(source / WEIGHTS_FILE)), "dev-best weights"
        report = source / "training.json"
        step = json.loads(report.read_text(encoding="utf-8")).get("best_step") if report.is_file() else None
    else:
        raise TrainingError(f"{source}: neither a reader folder with {WEIGHTS_FILE} nor a checkpoint file (.pt)")
    digest = hashlib.sha256()
    for name in sorted(weights):
        digest.update(name.encode())
        digest.update(weights[name].to(torch.float32).numpy().tobytes())
    weights = {name: tensor.to(torch.float32) for name, tensor in weights.items()}
    return weights, {"source": str(source), "kind": kind, "step": step, "sha256": digest.hexdigest()[:16]}


def average_weights(states: Sequence[dict[str, torch.Tensor]], names: Sequence[str]) -> dict[str, torch.Tensor]:
    """The uniform average, tensor by tensor; sources with other tensors or shapes are refused by name."""
    if not states:
        raise TrainingError("nothing to average: give at least one source")
    first = states[0]
    for state, name in zip(states[1:], names[1:], strict=True):
        if state.keys() != first.keys():
            odd = sorted(state.keys() ^ first.keys())
            raise TrainingError(f"{name} has other tensors than {names[0]} ({', '.join(odd[:3])}...)")
        for key, tensor in state.items():
            if tensor.shape != first[key].shape:
                raise TrainingError(
                    f"{name}: {key} has shape {tuple(tensor.shape)}, {names[0]} {tuple(first[key].shape)}"
                )
    return {key: sum(state[key] for state in states) / len(states) for key in first}


def average_readers(
    sources: Sequence[str | Path],
    output: str | Path,
    dev_paths: Sequence[str | Path] = (),
    max_answer_tokens: int = 64,
    say: Callable[[str], None] = lambda _m: None,
    progress: bool = False,
) -> dict[str, Any]:
    """Write the average of `sources` into `output` (a folder the reader loads) and return its report: the first
    folder source's training report with `weight_average` and, for each of `dev_paths`, the average's own
    whole-file scores in `final_dev` (read as that report's final evaluation was)."""
    from safetensors.torch import save_file

    from qa.training.data import load_squad

    paths = [Path(s) for s in sources]
    folders = [p for p in paths if not _is_checkpoint(p)]
    if not folders:
        raise TrainingError("give at least one reader folder: its config and tokenizer go with the average")
    output = Path(output)
    if output.resolve() in {p.resolve() for p in paths}:
        raise TrainingError(f"{output} is one of the sources: write the average elsewhere")
    loaded = [load_source(p) for p in paths]
    averaged = average_weights([w for w, _ in loaded], [str(p) for p in paths])
    output.mkdir(parents=True, exist_ok=True)
    for name in CARRIED_FILES:
        if (folders[0] / name).is_file():
            shutil.copy2(folders[0] / name, output / name)
    tmp = output / (WEIGHTS_FILE + ".tmp")
    save_file({k: v.contiguous() for k, v in averaged.items()}, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, output / WEIGHTS_FILE)
    say(f"averaged {len(paths)} sources into {output}")

    report_path = folders[0] / "training.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {}
    evaluation = report.get("evaluation", {})
    final: dict[str, Any] = {"step": None, "averaged": True}
    if dev_paths:
        results = score_saved_reader(
            output,
            {str(path): load_squad(path) for path in dev_paths},
            max_answer_tokens=evaluation.get("max_answer_tokens", max_answer_tokens),
            max_length=evaluation.get("max_length", 256),
            stride=evaluation.get("stride", 64),
            precision=evaluation.get("precision", "auto"),
            progress=progress,
            say=say,
        )
        final |= {name: result.summary() for name, result in results.items()}
    sources = [info for _, info in loaded]
    for info, path in zip(sources, paths, strict=True):
        sibling = path / "training.json"
        if path != folders[0] and not _is_checkpoint(path) and sibling.is_file():
            run = json.loads(sibling.read_text(encoding="utf-8"))
            if run.get("hyperparameters") != report.get("hyperparameters"):  # another run, not a copy of the first
                info["run"] = {k: v for k, v in run.items() if k not in ("base_training", "weight_average")}
    report["weight_average"] = {"sources": sources, "rule": "uniform"}
    report["final_dev"] = final if dev_paths else None
    (output / "training.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report
