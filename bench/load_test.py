"""Load test of the real app: many retrieval clients, a few model clients, health polled throughout.

Starts the web app (``ui.create_app``: REST API + Gradio UI, one uvicorn process) on
127.0.0.1 with a fresh data dir, adds the fixture articles through ``POST /api/documents``,
then for ``--seconds``:
- ``--clients`` concurrent clients each send ``POST /api/search`` (retrieval only: query
  embedding, Chroma, BM25, fusion) back to back;
- ``--ask-clients`` concurrent clients each send streamed ``POST /api/ask`` with the real
  model (short generations, ``--ask-max-tokens``), one after another;
- ``/api/health`` is polled every ``--health-interval`` seconds, each poll on its own so a
  slow answer does not hide the next one.
When the time is up no new request starts; asks still generating are waited for (up to
``--drain-seconds``). Errors are non-200 answers, transport failures, and streams that end
without an answer. Prints a summary and writes the figures as JSON (``--output``); exits 1 if
there was any error or any health poll went unanswered.

Run: ``python -m bench.load_test --clients 20 --seconds 60 --ask-clients 2``
(``--backend extractive`` for a run without the model).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from bench.servers import free_port

ARTICLES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "articles"
QUERIES = [
    "Why did the Copper Lake agreement collapse?",
    "How much grain crossed the border under the Harbor Accord?",
    "Which observatory published imagery of the Dunmore enrichment hall?",
    "What did sanctions do to specialty steel imports?",
    "How was the hotline between the two navies used?",
    "How do you keep a balcony compost bin from smelling?",
    "How did the river towns bring back the salmon?",
    "What happened at Kettle Weir?",
    "Does engagement with Arandia work?",
    "security assurances and inspections",
    "non-aggression pledge",
    "rail link reopened after eleven years",
]
QUESTIONS = QUERIES[:5] + ["What did the Harbor Accord reopen?", "Who expelled the inspectors, and when?"]


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50 / p95 / max / mean, or None for each when there are no values."""
    if not values:
        return {"p50": None, "p95": None, "max": None, "mean": None}
    array = np.asarray(values, dtype=float)
    return {
        "p50": round(float(np.percentile(array, 50)), 2),
        "p95": round(float(np.percentile(array, 95)), 2),
        "max": round(float(array.max()), 2),
        "mean": round(float(array.mean()), 2),
    }


@dataclass
class Tally:
    """What one kind of request did: latencies of the good ones, samples of the bad ones."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(message[:300])


@dataclass
class AskRecord:
    question: str
    latency_s: float
    first_token_s: float | None
    queued: bool
    declined: bool


async def _search_client(client: httpx.AsyncClient, deadline: float, tally: Tally, seed: int, k: int) -> None:
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        query = rng.choice(QUERIES)
        started = time.perf_counter()
        try:
            response = await client.post("/api/search", json={"query": query, "k": k})
            elapsed_ms = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                tally.fail(f"search {response.status_code}: {response.text}")
            elif not response.json():
                tally.fail(f"search returned no passages for {query!r}")
            else:
                tally.latencies.append(elapsed_ms)
        except httpx.HTTPError as exc:
            tally.fail(f"search {type(exc).__name__}: {exc}")


async def _list_client(client: httpx.AsyncClient, deadline: float, tally: Tally) -> None:
    """Lists the saved debates back to back (the database, not the model or the vectors)."""
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            response = await client.get("/api/debates")
            if response.status_code != 200:
                tally.fail(f"debates {response.status_code}: {response.text}")
            else:
                tally.latencies.append((time.perf_counter() - started) * 1000)
        except httpx.HTTPError as exc:
            tally.fail(f"debates {type(exc).__name__}: {exc}")


async def _ask_client(client: httpx.AsyncClient, deadline: float, tally: Tally, records: list[AskRecord], seed: int) -> None:
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        question = rng.choice(QUESTIONS)
        started = time.perf_counter()
        first_token: float | None = None
        queued = False
        final: dict | None = None
        try:
            async with client.stream("POST", "/api/ask", json={"question": question, "stream": True}) as response:
                if response.status_code != 200:
                    tally.fail(f"ask {response.status_code}: {(await response.aread()).decode(errors='replace')}")
                    continue
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event["type"] == "queued":
                        queued = True
                    elif event["type"] == "token" and first_token is None:
                        first_token = time.perf_counter() - started
                    elif event["type"] == "answer":
                        final = event
                    elif event["type"] == "error":
                        tally.fail(f"ask error line: {event}")
        except httpx.HTTPError as exc:
            tally.fail(f"ask {type(exc).__name__}: {exc}")
            continue
        elapsed = time.perf_counter() - started
        if final is None:
            tally.fail(f"ask stream for {question!r} ended without an answer")
            continue
        tally.latencies.append(elapsed)
        records.append(AskRecord(question, round(elapsed, 2), None if first_token is None else round(first_token, 2),
                                 queued, bool(final["declined"])))  # fmt: skip


async def _health_poller(client: httpx.AsyncClient, stop: asyncio.Event, tally: Tally, interval: float,
                         timeout: float, queue_seen: list[dict]) -> int:  # fmt: skip
    """Start one poll every ``interval`` seconds until ``stop``; returns how many were started."""

    async def poll() -> None:
        started = time.perf_counter()
        try:
            response = await client.get("/api/health", timeout=timeout)
            elapsed_ms = (time.perf_counter() - started) * 1000
            if response.status_code != 200 or response.json().get("status") != "ok":
                tally.fail(f"health {response.status_code}: {response.text}")
            else:
                tally.latencies.append(elapsed_ms)
                queue_seen.append(response.json()["queue"])
        except httpx.HTTPError as exc:
            tally.fail(f"health {type(exc).__name__} after {time.perf_counter() - started:.1f} s: {exc}")

    polls: list[asyncio.Task] = []
    while not stop.is_set():
        polls.append(asyncio.create_task(poll()))
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except asyncio.TimeoutError:
            pass
    await asyncio.gather(*polls)
    return len(polls)


async def drive(
    base_url: str,
    *,
    clients: int,
    seconds: float,
    ask_clients: int = 0,
    list_clients: int = 0,
    k: int = 5,
    health_interval: float = 0.5,
    health_timeout: float = 10.0,
    drain_seconds: float = 600.0,
    seed: int = 7,
) -> dict:
    """Run the load against an app already serving at ``base_url``; returns the figures."""
    everyone = clients + ask_clients + list_clients
    limits = httpx.Limits(max_connections=everyone + 64, max_keepalive_connections=everyone + 8)
    timeout = httpx.Timeout(drain_seconds + seconds, connect=30.0)
    async with (
        # Origin: the app takes writes (a search is a POST) only from its own pages or with a token.
        httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout, headers={"Origin": base_url}) as client,
        httpx.AsyncClient(base_url=base_url, timeout=health_timeout) as health_client,
    ):
        search, ask, health, listings = Tally(), Tally(), Tally(), Tally()
        records: list[AskRecord] = []
        queue_seen: list[dict] = []
        stop = asyncio.Event()
        poller = asyncio.create_task(_health_poller(health_client, stop, health, health_interval, health_timeout, queue_seen))
        started = time.monotonic()
        deadline = started + seconds
        searchers = [asyncio.create_task(_search_client(client, deadline, search, seed + i, k)) for i in range(clients)]
        searchers += [asyncio.create_task(_list_client(client, deadline, listings)) for _ in range(list_clients)]
        askers = [asyncio.create_task(_ask_client(client, deadline, ask, records, seed + 1000 + i)) for i in range(ask_clients)]
        await asyncio.gather(*searchers)
        search_window = time.monotonic() - started
        await _drain_asks(askers, ask, drain_seconds)
        total_window = time.monotonic() - started
        stop.set()
        polls = await poller

    return {
        "base_url": base_url,
        "config": {"clients": clients, "seconds": seconds, "ask_clients": ask_clients, "list_clients": list_clients, "k": k,
                   "health_interval_s": health_interval, "health_timeout_s": health_timeout},  # fmt: skip
        "search": _search_figures(search, search_window),
        "ask": _ask_figures(ask, records),
        "listings": _search_figures(listings, search_window),
        "health": _health_figures(health, polls, queue_seen),
        "errors": search.errors + ask.errors + listings.errors,
        "window_s": {"search": round(search_window, 1), "total": round(total_window, 1)},
    }


async def _drain_asks(askers: list[asyncio.Task], ask: Tally, drain_seconds: float) -> None:
    """Wait for the asks still generating after the window; those left after ``drain_seconds`` are
    cancelled and counted as one error."""
    try:
        await asyncio.wait_for(asyncio.gather(*askers), timeout=max(drain_seconds, 1.0))
    except asyncio.TimeoutError:
        for task in askers:
            task.cancel()
        ask.fail(f"asks still running {drain_seconds:g} s after the end of the window")


def _search_figures(search: Tally, window: float) -> dict:
    return {
        "requests": len(search.latencies) + search.errors,
        "errors": search.errors,
        "requests_per_s": round(len(search.latencies) / window, 2) if window else 0.0,
        "latency_ms": percentiles(search.latencies),
        "error_samples": search.error_samples,
    }


def _ask_figures(ask: Tally, records: list[AskRecord]) -> dict:
    return {
        "requests": len(ask.latencies) + ask.errors,
        "errors": ask.errors,
        "latency_s": percentiles(ask.latencies),
        "first_token_s": percentiles([r.first_token_s for r in records if r.first_token_s is not None]),
        "queued": sum(r.queued for r in records),
        "declined": sum(r.declined for r in records),
        "answers": [r.__dict__ for r in records],
        "error_samples": ask.error_samples,
    }


def _health_figures(health: Tally, polls: int, queue_seen: list[dict]) -> dict:
    return {
        "polls": polls,
        "answered": len(health.latencies),
        "failures": health.errors,
        "latency_ms": percentiles(health.latencies),
        "max_queue_waiting": max((q["waiting"] for q in queue_seen), default=0),
        "failure_samples": health.error_samples,
    }


# --- Running the real app in its own process ----------------------------------------------------

def app_from_env():
    """uvicorn factory (``bench.load_test:app_from_env --factory``): the app for the DA_* settings."""
    from assistant.server.service import Service
    from assistant.core.settings import Settings
    from ui import create_app

    return create_app(Service(Settings()))


def start_app(data_dir: Path, backend: str, ask_max_tokens: int, log_path: Path, timeout_s: float = 300.0):
    """The app in a uvicorn subprocess on 127.0.0.1; returns (process, base URL) once /api/health answers."""
    port = free_port()
    env = {**os.environ, "DA_DATA_DIR": str(data_dir), "DA_LLM_BACKEND": backend, "DA_LLM_MAX_TOKENS": str(ask_max_tokens),
           "DA_CONFIG_FILE": str(data_dir / "absent.toml")}  # fmt: skip
    command = [sys.executable, "-m", "uvicorn", "bench.load_test:app_from_env", "--factory",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]  # fmt: skip
    log = open(log_path, "wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=Path(__file__).resolve().parents[1])
    process.log_file = log  # type: ignore[attr-defined]  (closed by stop_app)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            log.close()
            raise RuntimeError(f"the app exited with {process.returncode}; see {log_path}")
        try:
            if httpx.get(f"{base_url}/api/health", timeout=2).status_code == 200:
                return process, base_url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop_app(process)
            raise TimeoutError(f"the app did not answer within {timeout_s:.0f} s; see {log_path}")
        time.sleep(0.5)


def stop_app(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log_file = getattr(process, "log_file", None)
    if log_file is not None:
        log_file.close()


def prepare(base_url: str, articles: Path, warm_ask: bool) -> dict:
    """Add the articles through the API, then one search (and one ask) so models are loaded before timing."""
    files = [("files", (path.name, path.read_bytes(), "application/octet-stream"))
             for path in sorted(articles.iterdir()) if path.is_file()]  # fmt: skip
    timings: dict[str, float] = {}
    with httpx.Client(base_url=base_url, timeout=900, headers={"Origin": base_url}) as client:
        started = time.perf_counter()
        results = client.post("/api/documents", files=files)
        results.raise_for_status()
        timings["ingest_s"] = round(time.perf_counter() - started, 2)
        failed = [r for r in results.json() if r["status"] not in ("added", "unchanged")]
        if failed:
            raise RuntimeError(f"ingest failed: {failed}")
        started = time.perf_counter()
        client.post("/api/search", json={"query": QUERIES[0]}).raise_for_status()
        timings["first_search_s"] = round(time.perf_counter() - started, 2)
        if warm_ask:
            started = time.perf_counter()
            client.post("/api/ask", json={"question": QUESTIONS[0]}).raise_for_status()
            timings["first_ask_s"] = round(time.perf_counter() - started, 2)
        timings["documents"] = client.get("/api/health").json()["documents"]
    return timings


def summary(report: dict) -> str:
    s, a, h = report["search"], report["ask"], report["health"]
    lines = [
        f"search: {s['requests']} requests, {s['requests_per_s']} req/s, latency ms p50 {s['latency_ms']['p50']} "
        f"p95 {s['latency_ms']['p95']} max {s['latency_ms']['max']}, errors {s['errors']}",
        f"ask:    {a['requests']} requests, latency s p50 {a['latency_s']['p50']} p95 {a['latency_s']['p95']} "
        f"max {a['latency_s']['max']}, first token s p50 {a['first_token_s']['p50']} max {a['first_token_s']['max']}, "
        f"queued {a['queued']}, declined {a['declined']}, errors {a['errors']}",
        f"health: {h['polls']} polls, {h['answered']} answered, latency ms p50 {h['latency_ms']['p50']} "
        f"p95 {h['latency_ms']['p95']} max {h['latency_ms']['max']}, failures {h['failures']}",
        f"errors: {report['errors']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load_test", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20, help="concurrent retrieval (/api/search) clients")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load window")
    parser.add_argument("--ask-clients", type=int, default=2, help="concurrent /api/ask clients (the model)")
    parser.add_argument("--backend", default="llamacpp", choices=["llamacpp", "openai", "extractive"])
    parser.add_argument("--ask-max-tokens", type=int, default=64, help="generation limit for the asks")
    parser.add_argument("-k", type=int, default=5, help="passages per search")
    parser.add_argument("--health-interval", type=float, default=0.5)
    parser.add_argument("--health-timeout", type=float, default=10.0, help="a poll slower than this counts as unanswered")
    parser.add_argument("--drain-seconds", type=float, default=600.0, help="how long to wait for asks after the window")
    parser.add_argument("--articles", type=Path, default=ARTICLES, help="folder of articles to ingest first")
    parser.add_argument("--no-warm-ask", action="store_true", help="do not load the model before the window")
    parser.add_argument("--output", type=Path, help="JSON report path (default: in the run folder)")
    args = parser.parse_args(argv)

    run_dir = Path(tempfile.mkdtemp(prefix="da-load-"))
    process, base_url = start_app(run_dir / "data", args.backend, args.ask_max_tokens, run_dir / "server.log")
    try:
        warmup = prepare(base_url, args.articles, warm_ask=args.ask_clients > 0 and not args.no_warm_ask)
        report = asyncio.run(drive(base_url, clients=args.clients, seconds=args.seconds, ask_clients=args.ask_clients,
                                   k=args.k, health_interval=args.health_interval, health_timeout=args.health_timeout,
                                   drain_seconds=args.drain_seconds))  # fmt: skip
    finally:
        stop_app(process)
    report["config"].update(backend=args.backend, ask_max_tokens=args.ask_max_tokens, cpus=os.cpu_count())
    report["warmup"] = warmup
    report["server_log"] = str(run_dir / "server.log")
    output = args.output or run_dir / "load_test.json"
    output.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(summary(report))
    print(f"report: {output}")
    return 0 if report["errors"] == 0 and report["health"]["failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
