from pathlib import Path

from runtimes.models import files_digest


def _write(root: Path, files: dict[str, bytes]) -> list[Path]:
    out = []
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out.append(path)
    return out


def test_files_digest_follows_names_contents_and_prefix(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    files_a = _write(a, {"model.safetensors": b"x" * (3 << 20), "sub/config.json": b"{}"})
    files_b = _write(b, {"model.safetensors": b"x" * (3 << 20), "sub/config.json": b"{}"})
    assert files_digest(files_a, a) == files_digest(files_b, b)  # where the folder is does not count
    assert len(files_digest(files_a, a)) == 16
    assert files_digest(files_a, a, "reader") != files_digest(files_a, a)
    assert files_digest(list(reversed(files_a)), a) != files_digest(files_a, a)  # the order given is hashed

    files_b[0].write_bytes(b"x" * (3 << 20) + b"y")  # one byte after three whole 1 MiB blocks
    assert files_digest(files_b, b) != files_digest(files_a, a)
    files_b[0].write_bytes(b"x" * (3 << 20))
    renamed = files_b[1].rename(b / "sub" / "other.json")
    assert files_digest([files_b[0], renamed], b) != files_digest(files_a, a)
