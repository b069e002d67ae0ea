"""The reader model's arithmetic: fp32, bf16 autocast, or `auto` (bf16 where the hardware runs it natively).

bf16 halves the bytes each matrix product moves, and chips with bf16 dot-product units (x86 `avx512_bf16`,
`amx_bf16`; CUDA GPUs that report bf16) run it natively. Elsewhere torch emulates it and it is far slower than
fp32, so `auto` only picks bf16 where a native unit is present: the same configuration is fast on every machine,
and exact (fp32) on those that have no bf16 unit.

What bf16 costs in answers, measured on the reader shipped before 2026-12-03's run 4 (2-core AMD EPYC with
AVX-512 BF16): reading each question's own context (`qa eval-reader ... --max-length 256 --stride 64
--max-answer-tokens 30`), SQuAD v1.1 dev seeded sample of 2,000 EM 0.6665 / F1 0.7786 in bf16 against
0.667 / 0.7787 in fp32, and COVID-QA test (375) 0.184 / 0.368 against 0.181 / 0.365; on the passages the
default pipeline retrieves for the 45 seed_dev questions, one thread, training running beside it, reading p50
157 ms against 266 ms (1.7x) with the same best span for 44 of 45 (the other scored 0.17, far under the
abstention threshold, in both). The calibration (`qa calibrate`) records the precision it read in.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from common.choices import parse_choice

if TYPE_CHECKING:
    import torch

NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
"""CPU features that run bf16 matrix products natively. Without them torch falls back to a scalar bf16 path:
measured on a 2-core AMD EPYC with AVX2 only, a training step of 32 x 256 windows took 72 s in bf16 against
3.5 s in fp32 (on an AVX-512 BF16 machine, bf16 took 4.7 s against 6.5 s)."""


class Precision(StrEnum):
    """AUTO (the default): BF16 where the device runs it natively, else FP32. FP32 is exact everywhere;
    BF16 autocast is refused for training on a CPU that would emulate it."""

    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"

    @classmethod
    def parse(cls, value: Precision | str) -> Precision:
        return parse_choice(cls, value, "reader precision")


def cpu_flags(path: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (Linux); empty where they cannot be read."""
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bf16(device: str, flags: set[str] | None = None) -> bool:
    """Whether `device` ("cpu", "cuda", "cuda:0", ...) runs bf16 matrix products natively."""
    kind = str(device).split(":")[0]
    if kind == "cpu":
        flags = cpu_flags() if flags is None else flags
        return any(f in flags for f in NATIVE_BF16_CPU_FLAGS)
    if kind == "cuda":
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return False


def resolve_precision(precision: Precision | str, device: str, flags: set[str] | None = None) -> Precision:
    """FP32 or BF16: AUTO becomes BF16 only where `native_bf16`; an explicit choice is kept as it is."""
    precision = Precision.parse(precision)
    if precision is not Precision.AUTO:
        return precision
    return Precision.BF16 if native_bf16(device, flags) else Precision.FP32


def store_linear_weights_in_bf16(model: torch.nn.Module) -> int:
    """Keep every `nn.Linear`'s weight and bias in bf16, in place, for a model that is read under bf16 autocast;
    returns how many layers changed. Autocast casts each fp32 Linear weight to bf16 on every forward pass (its
    weight cache lasts one autocast region, one reading); storing them in bf16 makes that cast a no-op, so the
    logits are bit-identical (tested) and the cast's time and memory traffic are saved. Embeddings and LayerNorm
    stay fp32, as autocast runs them. Measured on the shipped reader (2-core AMD EPYC with AVX-512 BF16, 4
    windows of 200 tokens, median of 30): 47.7 -> 42.9 ms on 1 thread, 33.4 -> 28.2 ms on 2. Only for a model
    used for reading: training updates fp32 weights."""
    import torch

    changed = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module.weight.dtype is not torch.bfloat16:
            module.weight.data = module.weight.data.to(torch.bfloat16)
            if module.bias is not None:
                module.bias.data = module.bias.data.to(torch.bfloat16)
            changed += 1
    return changed
