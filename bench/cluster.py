"""The whole school set on loopback: app replicas sharing one PostgreSQL, one Chroma server and one
OpenAI-compatible model server, behind HAProxy (Debian's) with health checks on ``/api/health``.

- ``Cluster`` starts and stops the set for the cluster test (tests/test_cluster.py) and the load
  comparison below; a replica can be killed (SIGKILL) and started again.
- ``python -m bench.cluster up --dir RUN`` starts it for development and leaves it running
  (``scripts/cluster.sh up|down`` wraps it); ``down --dir RUN`` stops every part.
- ``python -m bench.cluster load --replicas 1 2`` runs the same bounded load through the balancer
  (``bench.load_test.drive``: searches, asks and debate listings) with one replica and with two,
  and reports throughput and p95 of each.

Each replica has a data folder of its own, so nothing a user sees can come from a shared folder:
documents, debates and spar sessions are in PostgreSQL, vectors in the Chroma server. The
balancer sends a browser back to the replica it started on (a cookie: Gradio's queue keeps a
session's events in the process that took it); API clients without the cookie go round robin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.servers import (
    LLM_ALIAS,
    LLM_API_KEY,
    ServerProcess,
    chroma_command,
    chroma_ready_url,
    free_port,
    llama_cpp_command,
    postgres_down,
    postgres_up,
)

HAPROXY_CONFIG = """global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 30m
    timeout server 30m
    # A replica that refuses the connection (killed, restarting) costs the request nothing: it is
    # sent to the other. Nothing is retried once a replica has the request (a POST may have acted).
    retries 3
    option redispatch 1
    retry-on conn-failure
frontend school
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
    cookie DA_REPLICA insert indirect nocache httponly
    option httpchk
    http-check send meth GET uri /api/health ver HTTP/1.1 hdr Host 127.0.0.1
    http-check expect status 200
    default-server inter 1s fall 2 rise 2
{servers}
"""


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if found is None:
        raise RuntimeError("HAProxy not found: install Debian's haproxy package (scripts/ensure_test_tools.sh does)")
    return found


@dataclass
class Cluster:
    """The set under ``root``; ``llm``: "server" (llama.cpp's server on the packaged model, one
    generation at a time) or "extractive" (no model: retrieval and checks only)."""

    root: Path
    replicas: int = 2
    llm: str = "server"
    settings: dict[str, str] = field(default_factory=dict)  # more DA_* for every replica
    database_url: str = ""
    balancer_url: str = ""
    replica_urls: list[str] = field(default_factory=list)
    _servers: dict[str, ServerProcess] = field(default_factory=dict)

    def start(self) -> Cluster:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._start_parts()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_parts(self) -> None:
        postgres = Path(tempfile.mkdtemp(prefix="da-cluster-postgres-"))  # outside root: the server runs as postgres
        (self.root / "postgres_dir").write_text(str(postgres))
        self.database_url = postgres_up(postgres, free_port())
        chroma_port = free_port()
        self._run("chroma", chroma_command(self.root / "chroma", chroma_port), chroma_ready_url(chroma_port))
        env = {
            "DA_DATABASE_URL": self.database_url, "DA_STORE_MODE": "http", "DA_CHROMA_PORT": str(chroma_port),
            "DA_CHROMA_HOST": "127.0.0.1", "DA_STANCE_SUGGESTIONS": "false", **self.settings,
        }  # fmt: skip
        if self.llm == "server":
            port = free_port()
            self._run("llm", llama_cpp_command(port), f"http://127.0.0.1:{port}/v1/models")
            env |= {"DA_LLM_BACKEND": "openai", "DA_OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
                    "DA_OPENAI_MODEL": LLM_ALIAS, "DA_OPENAI_API_KEY": LLM_API_KEY}  # fmt: skip
        else:
            env["DA_LLM_BACKEND"] = "extractive"
        self._replica_env = env
        for n in range(1, self.replicas + 1):
            self.start_replica(n, first=True)
        port = free_port()
        servers = "\n".join(f"    server r{n} {url.removeprefix('http://')} check cookie r{n}"
                            for n, url in enumerate(self.replica_urls, 1))  # fmt: skip
        config = self.root / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(port=port, servers=servers))
        self.balancer_url = f"http://127.0.0.1:{port}"
        self._run("balancer", [haproxy_binary(), "-f", str(config), "-db"], f"{self.balancer_url}/api/health")
        self._wait_all_up()
        (self.root / "cluster.json").write_text(json.dumps(self.describe(), indent=2))

    def start_replica(self, n: int, first: bool = False) -> None:
        """Replica ``n`` (1-based): ``da app`` with a data folder of its own; again after a kill."""
        if first:
            port = free_port()
            self.replica_urls.append(f"http://127.0.0.1:{port}")
            data = self.root / f"replica{n}"
            env = {**os.environ, **self._replica_env, "DA_DATA_DIR": str(data), "DA_CONFIG_FILE": str(data / "absent.toml")}
            command = [sys.executable, "-m", "assistant.cli", "app", "--port", str(port)]
            self._servers[f"replica{n}"] = ServerProcess(command, f"{self.replica_urls[-1]}/api/health", timeout_s=300,
                                                         log_path=self.root / f"replica{n}.log", env=env)  # fmt: skip
        self._servers[f"replica{n}"].start()

    def kill_replica(self, n: int) -> None:
        self._servers[f"replica{n}"].kill()

    def _run(self, name: str, command: list[str], ready_url: str) -> None:
        server = ServerProcess(command, ready_url, timeout_s=300, log_path=self.root / f"{name}.log")
        self._servers[name] = server
        server.start()

    def _wait_all_up(self, timeout_s: float = 60) -> None:
        """Until the balancer's health checks have seen every replica up (``rise 2``: about 2 s)."""
        deadline = time.monotonic() + timeout_s
        seen: set[str] = set()
        with httpx.Client(base_url=self.balancer_url, timeout=10) as client:
            while len(seen) < self.replicas:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the balancer reached only {sorted(seen)} of {self.replicas} replicas")
                client.cookies.clear()
                response = client.get("/api/health")
                if response.status_code == 200 and "DA_REPLICA" in response.cookies:
                    seen.add(response.cookies["DA_REPLICA"])
                time.sleep(0.2)

    def detach(self) -> None:
        """Leave every part running when this process ends (``up``; ``down`` stops them by pid)."""
        for server in self._servers.values():
            server.process = None
        self._servers.clear()

    def describe(self) -> dict:
        return {"balancer": self.balancer_url, "replicas": self.replica_urls, "database": self.database_url,
                "pids": {name: s.process.pid for name, s in self._servers.items() if s.process is not None}}  # fmt: skip

    def stop(self) -> None:
        for name in reversed(list(self._servers)):
            self._servers[name].stop()
        self._servers.clear()
        _stop_postgres(self.root)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_postgres(root: Path) -> None:
    marker = root / "postgres_dir"
    if marker.exists():
        folder = marker.read_text().strip()
        postgres_down(Path(folder))
        marker.unlink()


def load(replicas: list[int], clients: int, seconds: float, list_clients: int, ask_clients: int) -> list[dict]:
    """The same load through the balancer of a fresh set with each number of replicas."""
    from bench.load_test import ARTICLES, drive, prepare

    reports = []
    for count in replicas:
        with Cluster(Path(tempfile.mkdtemp(prefix=f"da-cluster-{count}-")), replicas=count, llm="extractive") as cluster:
            prepare(cluster.balancer_url, ARTICLES, warm_ask=False)
            report = asyncio.run(drive(cluster.balancer_url, clients=clients, seconds=seconds, ask_clients=ask_clients,
                                       list_clients=list_clients))  # fmt: skip
        report["replicas"] = count
        reports.append(report)
        print(f"{count} replica(s): {json.dumps({k: report[k] for k in ('search', 'ask', 'listings', 'errors')})}",
              flush=True)  # fmt: skip
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the set and leave it running")
    up.add_argument("--dir", type=Path, required=True)
    up.add_argument("--replicas", type=int, default=2)
    up.add_argument("--llm", choices=["server", "extractive"], default="server")
    down = commands.add_parser("down", help="stop a set started with up")
    down.add_argument("--dir", type=Path, required=True)
    loaded = commands.add_parser("load", help="bounded load through the balancer, per number of replicas")
    loaded.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    loaded.add_argument("--clients", type=int, default=20, help="clients in all: searches, listings, asks")
    loaded.add_argument("--seconds", type=float, default=120.0)
    loaded.add_argument("--list-clients", type=int, default=4, help="of the clients, how many list debates")
    loaded.add_argument("--ask-clients", type=int, default=2, help="of the clients, how many ask")
    loaded.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    if args.command == "up":
        cluster = Cluster(args.dir, replicas=args.replicas, llm=args.llm).start()
        print(json.dumps(cluster.describe(), indent=2))
        cluster.detach()
        return 0
    if args.command == "down":
        described = json.loads((args.dir / "cluster.json").read_text())
        for pid in described["pids"].values():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        _stop_postgres(args.dir)
        return 0
    searches = args.clients - args.list_clients - args.ask_clients
    reports = load(args.replicas, searches, args.seconds, args.list_clients, args.ask_clients)
    if args.output:
        args.output.write_text(json.dumps(reports, indent=2))
    return 0 if all(r["errors"] == 0 for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
