"""Real server processes on 127.0.0.1 that can be started, killed with SIGKILL and started again:
Chroma's server, llama.cpp's OpenAI-compatible server, a throwaway PostgreSQL, any command with a URL that says it is
ready. The tests (``tests/servers.py``), the benchmarks and the cluster (``bench.cluster``) use them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

POSTGRES_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "postgres.sh"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A real server process that a test can start, kill with SIGKILL and start again.

    The same command is rerun on restart, so a server with a fixed port and data path comes
    back where clients expect it (a crash and a supervisor's restart). The log file, if any,
    collects the output of every run.
    """

    def __init__(self, command: list[str], ready_url: str, timeout_s: float = 180.0, log_path=None,
                 env: dict[str, str] | None = None) -> None:  # fmt: skip
        self.command = command
        self.env = env  # None: this process's environment
        self.ready_url = ready_url
        self.timeout_s = timeout_s
        self.log_path = log_path
        self.process = None

    def start(self) -> float:
        """Start and wait until ``ready_url`` answers (any non-5xx status); returns the seconds it took."""
        import subprocess
        import time

        import httpx

        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        started = time.monotonic()
        try:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        finally:
            if self.log_path:
                log.close()  # the child holds its own copy
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {' '.join(self.command)}")
            try:
                if httpx.get(self.ready_url, timeout=2).status_code < 500:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > self.timeout_s:
                self.stop()
                raise TimeoutError(f"server not ready after {self.timeout_s:.0f} s: {self.ready_url}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a crash or an OOM kill."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """Ask politely (SIGTERM), then kill if it does not exit within 20 s."""
        import subprocess

        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


@contextmanager
def server_process(command: list[str], ready_url: str, timeout_s: float = 180.0, log_path=None) -> Iterator[None]:
    """Run ``command`` as a real server process until ``ready_url`` answers (any non-5xx status,
    so an endpoint behind auth works too); stop it afterwards."""
    server = ServerProcess(command, ready_url, timeout_s, log_path)
    server.start()
    try:
        yield
    finally:
        server.stop()


LLM_ALIAS, LLM_API_KEY = "qwen-local", "test-key"


def llama_cpp_command(port: int, alias: str = LLM_ALIAS, api_key: str | None = LLM_API_KEY,
                      extra: tuple[str, ...] = ()) -> list[str]:  # fmt: skip
    """llama.cpp's own OpenAI-compatible server on 127.0.0.1 serving the packaged GGUF as model
    ``alias`` (behind ``api_key`` when given); its ``/v1/models`` answers once it is ready."""
    import sys

    from assistant.core.settings import Settings
    from assistant.models.model_files import resolve_gguf

    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(resolve_gguf(Settings())), "--model_alias", alias,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
        *(["--api_key", api_key] if api_key else []), *extra,
    ]  # fmt: skip


@contextmanager
def llama_cpp_server(log_path) -> Iterator[str]:
    """``llama_cpp_command`` as model ``LLM_ALIAS`` behind ``LLM_API_KEY``; yields its ``/v1`` base URL."""
    port = free_port()
    server = ServerProcess(llama_cpp_command(port), f"http://127.0.0.1:{port}/v1/models", log_path=log_path)
    print(f"\nllama.cpp server ready in {server.start():.1f} s")
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.stop()


def postgres_up(folder: Path, port: int) -> str:
    """A throwaway PostgreSQL cluster in ``folder`` on 127.0.0.1:``port`` (scripts/postgres.sh); its URL.
    ``folder`` must be reachable by the postgres user when run as root (not under pytest's tmp_path)."""
    import subprocess

    return subprocess.run(["bash", str(POSTGRES_SCRIPT), "up", str(folder), str(port)], check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip


def postgres_down(folder: Path) -> None:
    """Stop the cluster ``postgres_up`` started in ``folder`` and delete the folder."""
    import shutil
    import subprocess

    subprocess.run(["bash", str(POSTGRES_SCRIPT), "down", str(folder)], capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


def chroma_command(path, port: int) -> list[str]:
    """``chroma run`` from the chromadb package installed beside this interpreter, on loopback."""
    import sys

    chroma = Path(sys.executable).parent / "chroma"  # the venv's bin dir; not resolved to the base Python
    return [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)]


def chroma_ready_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/api/v2/heartbeat"
