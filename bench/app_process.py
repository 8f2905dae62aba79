"""The web app as users run it (``da app``, i.e. ``python -m assistant.cli app``) in its own process
on 127.0.0.1, with its own data dir and settings: started, stopped with SIGTERM and restarted by
the soak and the shutdown tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.servers import free_port

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def serve_asgi(app) -> Iterator[str]:
    """Run an ASGI app with uvicorn on 127.0.0.1 in a thread (the tests' apps, the concurrent test
    server); yields its base URL, and stops it on leaving."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=0.3))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the app did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class AppProcess:
    """``da app`` on a fixed loopback port; ``settings`` become ``DA_*`` environment variables."""

    def __init__(self, data_dir: Path, log_path: Path, settings: dict[str, object] | None = None, port: int | None = None):
        self.data_dir = data_dir
        self.log_path = log_path
        self.settings = settings or {}
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DA_") or k == "DA_SHARED_DIR"}
        env.update(DA_DATA_DIR=str(self.data_dir), DA_CONFIG_FILE=str(self.data_dir / "absent.toml"))
        env.update({f"DA_{key.upper()}": str(value) for key, value in self.settings.items()})
        return env

    def start(self, timeout_s: float = 300.0) -> float:
        """Start the app and wait until ``/api/health`` answers; returns the seconds that took."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "assistant.cli", "app", "--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env(), cwd=ROOT)
        started = time.monotonic()
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app exited with {self.process.returncode}; see {self.log_path}")
            try:
                if httpx.get(f"{self.base_url}/api/health", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > timeout_s:
                self.kill()
                raise TimeoutError(f"the app did not answer within {timeout_s:.0f} s; see {self.log_path}")
            time.sleep(0.2)

    def terminate(self, timeout_s: float = 30.0) -> tuple[int | None, float]:
        """SIGTERM, then wait up to ``timeout_s``: (exit code or None if still running, seconds waited)."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            code = None
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """Terminate politely, kill if that does not work within 30 s (clean-up after a failure)."""
        if self.process is not None and self.process.poll() is None:
            code, _ = self.terminate(30.0)
            if code is None:
                self.kill()
