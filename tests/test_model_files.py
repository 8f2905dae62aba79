"""Assembling and verifying the packaged GGUF, with small stand-in part packages."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from assistant.models.model_files import ModelFileError, PackagedModel, ensure_packaged_model, resolve_gguf
from assistant.core.settings import Settings

PARTS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[PackagedModel, Path]:
    """Three importable packages ``standin_part{i}`` holding ``data/part0{i}.bin``."""
    site = tmp_path / "site"
    for i, data in enumerate(PARTS, start=1):
        package = site / f"standin_part{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(site))
    model = PackagedModel(
        file_name="standin.gguf",
        parts=3,
        package="standin_part{i}",
        part_file="data/part{i:02d}.bin",
        sha256=hashlib.sha256(b"".join(PARTS)).hexdigest(),
        pip_names="standin-part1 .. standin-part3",
    )
    return model, site


def test_parts_are_assembled_once_and_verified(stand_in, tmp_path: Path) -> None:
    model, _ = stand_in
    path = ensure_packaged_model(tmp_path / "models", model)
    assert path.read_bytes() == b"".join(PARTS)
    mtime = path.stat().st_mtime_ns
    assert ensure_packaged_model(tmp_path / "models", model) == path
    assert path.stat().st_mtime_ns == mtime  # the stamp said it is verified: not rebuilt
    assert sorted(p.name for p in path.parent.iterdir()) == ["standin.gguf", "standin.gguf.verified"]


def test_a_corrupted_model_file_is_rebuilt(stand_in, tmp_path: Path) -> None:
    model, _ = stand_in
    path = ensure_packaged_model(tmp_path / "models", model)
    with path.open("r+b") as handle:
        handle.seek(10)
        handle.write(b"XXXX")
    assert ensure_packaged_model(tmp_path / "models", model).read_bytes() == b"".join(PARTS)


def test_a_corrupt_part_gives_a_fix_it_message_and_leaves_nothing_behind(stand_in, tmp_path: Path) -> None:
    model, site = stand_in
    (site / "standin_part2" / "data" / "part02.bin").write_bytes(b"b" * 776)
    with pytest.raises(ModelFileError, match="checksum.*pip install --force-reinstall standin-part1"):
        ensure_packaged_model(tmp_path / "models", model)
    assert list((tmp_path / "models").iterdir()) == []


def test_a_missing_part_package_says_what_to_install(stand_in, tmp_path: Path) -> None:
    model, _ = stand_in
    missing = PackagedModel(**{**model.__dict__, "parts": 4})
    with pytest.raises(ModelFileError, match=r"missing parts \[4\].*DA_LLM_MODEL_PATH"):
        ensure_packaged_model(tmp_path / "models", missing)


def test_a_configured_path_must_exist_and_be_gguf(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        resolve_gguf(Settings(llm_model_path=tmp_path / "nope.gguf"))
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("plain text")
    with pytest.raises(ModelFileError, match="not a GGUF"):
        resolve_gguf(Settings(llm_model_path=not_gguf))
    real = tmp_path / "other.gguf"
    real.write_bytes(b"GGUF" + b"\0" * 16)
    assert resolve_gguf(Settings(llm_model_path=real)) == real
