#!/usr/bin/env bash
# Create .venv with Python 3.11 and install the project into it, only when something is missing
# or pyproject.toml changed since the last install. Safe to run again and again.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

find_python() {
    for candidate in python3.11 python3 python; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "error: Python 3.11 is required (python3.11 not found on PATH)" >&2
    return 1
}

if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$(find_python)" -m venv .venv
fi

stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
    echo "==> installing Debate Assistant and its dependencies into .venv (first run takes a few minutes)"
    .venv/bin/python -m pip install --quiet --upgrade pip
    # torch first and exactly pinned, so nothing later can pull a CUDA build.
    .venv/bin/python -m pip install --quiet "torch==2.13.0"
    # llama-cpp-python has no binary wheel: pip compiles it (about 5-10 minutes, once; pip caches
    # the wheel). Portable flags, so the build does not depend on this exact CPU.
    export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BLAS=OFF -DGGML_CUDA=OFF -DLLAMA_CURL=OFF}"
    .venv/bin/python -m pip install --quiet -e ".[dev]"
    rm -f .venv/.installed-*
    touch "$stamp"
fi
