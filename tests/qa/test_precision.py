"""`auto` reader precision: bf16 only where the device runs it natively, an explicit choice kept as given."""

from pathlib import Path

import pytest

from qa.readers.precision import Precision, cpu_flags, native_bf16, resolve_precision

AVX2_ONLY = {"sse4_2", "avx", "avx2", "fma"}
AVX512_BF16 = AVX2_ONLY | {"avx512f", "avx512_bf16", "avx512_vnni"}
AMX = AVX2_ONLY | {"amx_tile", "amx_bf16"}


def test_auto_picks_bf16_only_on_a_cpu_with_a_bf16_unit() -> None:
    assert resolve_precision("auto", "cpu", AVX512_BF16) is Precision.BF16
    assert resolve_precision(Precision.AUTO, "cpu", AMX) is Precision.BF16
    assert resolve_precision("auto", "cpu", AVX2_ONLY) is Precision.FP32
    assert resolve_precision("auto", "cpu", AVX2_ONLY | {"avx512f", "avx512bw"}) is Precision.FP32  # emulated
    assert resolve_precision("auto", "mps", AVX512_BF16) is Precision.FP32  # no native bf16 path known there


def test_an_explicit_precision_is_kept_whatever_the_hardware() -> None:
    assert resolve_precision("fp32", "cpu", AVX512_BF16) is Precision.FP32
    assert resolve_precision("bf16", "cpu", AVX2_ONLY) is Precision.BF16


def test_unknown_precision_lists_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown reader precision 'int4'; choose one of: auto, fp32, bf16"):
        resolve_precision("int4", "cpu", AVX512_BF16)


def test_cpu_flags_are_read_from_cpuinfo_and_empty_where_unreadable(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: EPYC\nflags\t\t: fpu avx2 avx512_bf16\n\n", encoding="utf-8")
    assert cpu_flags(info) == {"fpu", "avx2", "avx512_bf16"}
    assert native_bf16("cpu", cpu_flags(info))
    assert cpu_flags(tmp_path / "missing") == set()
    assert not native_bf16("cpu", set())  # unreadable flags: fp32, the exact choice
