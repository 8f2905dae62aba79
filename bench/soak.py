"""Chaos soak of the real app: many clients, random disconnects, one SIGTERM and restart mid-run.

Starts ``da app`` (``bench.app_process``) on 127.0.0.1 with a fresh data dir, adds the fixture
articles, then for ``--minutes`` runs ``--clients`` concurrent clients that ask (streamed or
not), debate, search, upload and delete at random, with short pauses. A ``--disconnect-share``
of the streamed asks and debates leave at a random point (after a random number of lines or a
random time). Half way (``--restart-at``) the server gets SIGTERM and is started again on the
same port and data dir. When the time is up no new request starts; running ones finish within
their bounds. Only 127.0.0.1 is contacted; the run stops by itself.

Afterwards (server stopped with SIGTERM again) it checks that:
- the queue was idle at the end (not wedged) and the server exited 0 both times;
- the registry and the vector store agree (same passage ids, no pending or half-deleted
  document), every upload that succeeded and was not deleted is there, every deleted one gone;
- every saved debate is complete (all its turns) or marked stopped (finished turns only);
- no request took longer than its bound (queue wait + generation budget for the model,
  a fixed bound for the rest).

Prints a table (requests by kind, p50/p95/max latency, disconnects, 503 busy, errors) and
writes the figures as JSON. Exit code 1 if any check failed.

Run: ``python -m bench.soak --minutes 10 --clients 20 --disconnect-share 0.25``
(``--backend extractive`` for a quick run without the model).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from bench.app_process import AppProcess
from bench.load_test import ARTICLES, QUERIES, QUESTIONS, percentiles

MOTIONS = [
    "Should the government offer Arandia a non-aggression pledge first?",
    "Does engagement with Arandia work better than sanctions?",
    "Should inspectors return to Dunmore before any aid is offered?",
]
KINDS = {"search": 0.30, "ask": 0.30, "debate": 0.12, "upload": 0.16, "delete": 0.12}
FIXED_BOUND_S = 120.0  # search, upload, delete: a request slower than this counts as over its bound
SLACK_S = 15.0
IDLE_WAIT_S = 90.0  # the longest a prompt takes to read on a busy 2-core machine, with room to spare


@dataclass
class Record:
    kind: str
    started: float
    latency_s: float
    outcome: str  # ok | disconnected | busy (503) | budget (504) | restart (server going down/up) | error
    detail: str = ""
    bound_s: float = 0.0


@dataclass(frozen=True)
class Leave:
    """When a client leaves a stream early: ``phase`` "queued" (after ``seconds`` from the request,
    usually before its turn came) or "generating" (after ``lines`` or ``seconds`` of generation)."""

    phase: str
    lines: int
    seconds: float


@dataclass
class State:
    """What the clients believe about the library, checked against the data dir at the end."""

    uploaded: dict[str, str] = field(default_factory=dict)  # doc id -> marker text
    deleted: set[str] = field(default_factory=set)
    uncertain: set[str] = field(default_factory=set)  # deletes whose connection broke: either state is right
    debates: set[int] = field(default_factory=set)
    restarting: bool = False
    restart_window: tuple[float, float] | None = None


def _load(queue: dict) -> dict:
    """What the queue is doing, from /api/health's ``queue``: running or not, and how many wait."""
    return {"running": queue["running"], "waiting": queue["waiting"]}


class Soak:
    def __init__(self, app: AppProcess, args: argparse.Namespace) -> None:
        self.app, self.args = app, args
        self.records: list[Record] = []
        self.state = State()
        self.queue_seen: list[dict] = []
        self.model_bound_s = args.queue_timeout + args.generation_timeout + SLACK_S

    # -- one request of each kind -------------------------------------------------------------
    async def search(self, client: httpx.AsyncClient, rng: random.Random) -> tuple[str, str]:
        response = await client.post("/api/search", json={"query": rng.choice(QUERIES), "k": 5})
        return self._status(response)

    async def upload(self, client: httpx.AsyncClient, rng: random.Random) -> tuple[str, str]:
        marker = f"soak-{uuid.uuid4().hex[:12]}"
        text = (f"Field note {marker}. The harbor office counted {rng.randint(2, 900)} ferries this season. "
                f"Grain shipments rose by {rng.randint(1, 60)} percent after the rail link reopened. "
                "Inspectors visited the Dunmore hall twice and filed a short report.")  # fmt: skip
        if rng.random() < 0.5:
            response = await client.post("/api/documents", files=[("files", (f"{marker}.txt", text.encode(), "text/plain"))])
        else:
            response = await client.post("/api/documents", data={"text": text, "title": f"Note {marker}"})
        outcome, detail = self._status(response)
        if outcome == "ok":
            for result in response.json():
                if result["status"] == "added" and result.get("doc_id"):
                    self.state.uploaded[result["doc_id"]] = marker
                elif result["status"] != "added":
                    return "error", f"upload result {result}"
        return outcome, detail

    async def delete(self, client: httpx.AsyncClient, rng: random.Random) -> tuple[str, str]:
        candidates = sorted(set(self.state.uploaded) - self.state.deleted)
        if not candidates:
            return await self.search(client, rng)
        doc_id = rng.choice(candidates)
        self.state.deleted.add(doc_id)  # claimed before the call: no two clients delete the same one
        try:
            response = await client.delete(f"/api/documents/{doc_id}")
        except httpx.HTTPError:
            self.state.uncertain.add(doc_id)  # the connection failed (restart): deleted or not, unknown
            raise
        outcome, detail = self._status(response)
        if outcome != "ok":
            self.state.deleted.discard(doc_id)  # not deleted after all (server restarting)
        return outcome, detail

    async def ask(self, client: httpx.AsyncClient, rng: random.Random, leave: Leave | None) -> tuple[str, str]:
        body = {"question": rng.choice(QUESTIONS)}
        if leave is None and rng.random() < 0.4:  # some plain JSON requests too
            response = await client.post("/api/ask", json=body)
            outcome, detail = self._status(response)
            if outcome == "ok" and not response.json().get("answer"):
                return "error", "empty answer"
            return outcome, detail
        return await self._stream(client, "/api/ask", {**body, "stream": True}, "answer", leave)

    async def debate(self, client: httpx.AsyncClient, rng: random.Random, leave: Leave | None) -> tuple[str, str]:
        return await self._stream(client, "/api/debate", {"motion": rng.choice(MOTIONS)}, "debate", leave)

    async def _stream(self, client: httpx.AsyncClient, path: str, body: dict, final: str,
                      leave: Leave | None) -> tuple[str, str]:  # fmt: skip
        """A streamed request, read to its final line, or left as ``leave`` says: while still queued
        (after some seconds), or once generation has begun (after some lines or seconds of it)."""
        loop = asyncio.get_running_loop()
        generating, lines = False, 0
        try:
            async with asyncio.timeout(None) as deadline:
                if leave and leave.phase == "queued":
                    deadline.reschedule(loop.time() + leave.seconds)
                async with client.stream("POST", path, json=body) as response:
                    if response.status_code != 200:
                        await response.aread()
                        return self._status(response)
                    async for raw in response.aiter_lines():
                        if not raw.strip():
                            continue
                        event = json.loads(raw)
                        if event["type"] == "start":
                            self.state.debates.add(event["id"])
                        if event["type"] == final:
                            return "ok", ""
                        if event["type"] == "error":
                            return self._error_line(event)
                        if event["type"] in ("start", "turn_start", "token") and not generating:
                            generating = True
                            if leave and leave.phase == "generating":
                                deadline.reschedule(loop.time() + leave.seconds)
                        lines += generating
                        if leave and leave.phase == "generating" and lines >= leave.lines:
                            return "disconnected", f"generating, after {lines} lines"
        except TimeoutError:
            return "disconnected", f"{'generating' if generating else 'queued'}, after {leave.seconds:.1f} s"
        if self.state.restarting or self._in_restart_window(time.monotonic()):
            return "restart", "stream ended by the restart"
        return "error", f"{path} stream ended without a {final} line"

    # -- outcomes -----------------------------------------------------------------------------
    def _status(self, response: httpx.Response) -> tuple[str, str]:
        if response.status_code == 200:
            return "ok", ""
        if response.status_code == 503:
            detail = response.json().get("detail", "")
            if "shutting down" in detail:
                return "restart", detail
            if not response.headers.get("retry-after"):
                return "error", f"503 without Retry-After: {detail}"
            return "busy", detail
        if response.status_code == 504:
            return "budget", response.text[:200]
        return "error", f"{response.status_code}: {response.text[:300]}"

    def _error_line(self, event: dict) -> tuple[str, str]:
        status, detail = event.get("status"), event.get("detail", "")
        if status == 503 and "shutting down" in detail:
            return "restart", detail
        if status == 503 and event.get("retry_after"):
            return "busy", detail
        if status == 504:
            return "budget", detail
        return "error", f"error line {event}"

    def _in_restart_window(self, at: float) -> bool:
        window = self.state.restart_window
        return window is not None and window[0] - 1 <= at <= window[1] + 1

    # -- clients, health, restart --------------------------------------------------------------
    async def client(self, index: int, deadline: float) -> None:
        rng = random.Random(self.args.seed * 1000 + index)
        limits = httpx.Limits(max_connections=4, max_keepalive_connections=0)
        timeout = httpx.Timeout(self.model_bound_s + 30, connect=10)
        # Origin: the app takes writes only from its own pages or with a token (assistant.server.access).
        async with httpx.AsyncClient(base_url=self.app.base_url, timeout=timeout, limits=limits,
                                     headers={"Origin": self.app.base_url}) as client:  # fmt: skip
            while time.monotonic() < deadline:
                kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
                leave = None
                if kind in ("ask", "debate") and rng.random() < self.args.disconnect_share:
                    phase = rng.choice(["queued", "generating"])
                    leave = Leave(phase, rng.randint(1, 20), rng.uniform(0.5, 40.0 if phase == "queued" else 20.0))
                started = time.monotonic()
                try:
                    if kind in ("ask", "debate"):
                        outcome, detail = await getattr(self, kind)(client, rng, leave)
                    else:
                        outcome, detail = await getattr(self, kind)(client, rng)
                except httpx.HTTPError as exc:
                    ended = time.monotonic()
                    if self.state.restarting or self._in_restart_window(started) or self._in_restart_window(ended):
                        outcome, detail = "restart", f"{type(exc).__name__}"
                    else:
                        outcome, detail = "error", f"{type(exc).__name__}: {exc}"
                latency = time.monotonic() - started
                bound = self.model_bound_s if kind in ("ask", "debate") else FIXED_BOUND_S
                self.records.append(Record(kind, round(started, 3), round(latency, 3), outcome, detail[:300], bound))
                if self.state.restarting:
                    while self.state.restarting and time.monotonic() < deadline:
                        await asyncio.sleep(0.5)
                else:
                    await asyncio.sleep(rng.uniform(0.2, 2.0))

    async def health(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=self.app.base_url, timeout=10) as client:
            while not stop.is_set():
                if not self.state.restarting:
                    try:
                        queue = (await client.get("/api/health")).json()["queue"]
                        self.queue_seen.append({"t": round(time.monotonic(), 1), **queue})
                    except (httpx.HTTPError, ValueError, KeyError):
                        pass
                try:
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
                except TimeoutError:
                    pass

    async def restart(self, at: float) -> dict:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        self.state.restarting = True
        began = time.monotonic()
        code, shutdown_s = await asyncio.to_thread(self.app.terminate, 30.0)
        if code is None:
            self.app.kill()
        startup_s = await asyncio.to_thread(self.app.start)
        self.state.restart_window = (began, time.monotonic())
        self.state.restarting = False
        return {"exit_code": code, "shutdown_s": round(shutdown_s, 2), "startup_s": round(startup_s, 2)}

    async def run(self) -> dict:
        started = time.monotonic()
        deadline = started + self.args.minutes * 60
        stop = asyncio.Event()
        poller = asyncio.create_task(self.health(stop))
        restart = asyncio.create_task(self.restart(started + self.args.restart_at * self.args.minutes * 60))
        await asyncio.gather(*(self.client(i, deadline) for i in range(self.args.clients)))
        restarted = await restart
        # Idle check: with every client finished, the model must be free and nobody waiting. A request
        # abandoned while its prompt was read lets go at its first token, so allow one prompt's time.
        idle_started = time.monotonic()
        async with httpx.AsyncClient(base_url=self.app.base_url, timeout=10) as client:
            while True:
                final_queue = _load((await client.get("/api/health")).json()["queue"])
                if final_queue == {"running": False, "waiting": 0} or time.monotonic() - idle_started > IDLE_WAIT_S:
                    break
                await asyncio.sleep(0.5)
        stop.set()
        await poller
        return {"restart": restarted, "final_queue": final_queue, "idle_after_s": round(time.monotonic() - idle_started, 1),
                "window_s": round(time.monotonic() - started, 1)}  # fmt: skip


def check_data(data_dir: Path, state: State, rounds_turns: int) -> dict:
    """Registry against vector store, uploads against the library, debates against their status."""
    from assistant.storage.library import Library
    from assistant.core.settings import Settings
    from assistant.core.debate_record import COMPLETE, STOPPED
    from assistant.storage.transcripts import TranscriptStore
    from assistant.storage.registry import COMPLETE as DOC_COMPLETE

    settings = Settings(data_dir=data_dir)
    library = Library(settings)
    try:
        complete = {d.id for d in library.registry.documents()}
        unfinished = [f"{d.title} ({d.status})" for d in library.registry.documents(status=None) if d.status != DOC_COMPLETE]
        registry_ids = {p.id for p in library.registry.passages()}
        store_ids = set(library.store.all_ids())
        lost = sorted(set(state.uploaded) - state.deleted - state.uncertain - complete)
        not_deleted = sorted((state.deleted - state.uncertain) & complete)
    finally:
        library.close()
    store = TranscriptStore.from_settings(settings)
    bad_debates = []
    statuses: dict[str, int] = defaultdict(int)
    try:
        for debate_id, _, _, status, _ in store.list(limit=100_000):
            debate = store.get(debate_id)
            statuses[status] += 1
            indices = [t.index for t in debate.turns]
            if status == COMPLETE and indices != list(range(rounds_turns)):
                bad_debates.append(f"{debate_id}: complete with turns {indices}")
            elif status == STOPPED and indices != list(range(len(indices))):
                bad_debates.append(f"{debate_id}: stopped with turns {indices}")
            elif status not in (COMPLETE, STOPPED):
                bad_debates.append(f"{debate_id}: status {status} with turns {indices}")
    finally:
        store.close()
    return {
        "documents": len(complete),
        "registry_passages": len(registry_ids),
        "store_vectors": len(store_ids),
        "registry_and_store_agree": registry_ids == store_ids,
        "only_in_registry": len(registry_ids - store_ids),
        "only_in_store": len(store_ids - registry_ids),
        "unfinished_documents": unfinished,
        "lost_uploads": lost,
        "deleted_but_present": not_deleted,
        "debates": dict(statuses),
        "debates_seen_by_clients": len(state.debates),
        "bad_debates": bad_debates,
    }


def table(records: list[Record]) -> tuple[list[dict], str]:
    """Per kind: requests, ok, disconnects, busy (503), budget (504), restart, errors, latency of the ok ones."""
    rows = []
    for kind in [*KINDS, "all"]:
        chosen = [r for r in records if kind == "all" or r.kind == kind]
        if not chosen:
            continue
        count = lambda outcome: sum(r.outcome == outcome for r in chosen)  # noqa: E731
        latency = percentiles([r.latency_s for r in chosen if r.outcome == "ok"])
        rows.append({
            "kind": kind, "requests": len(chosen), "ok": count("ok"), "disconnects": count("disconnected"),
            "of_them_generating": sum(r.outcome == "disconnected" and r.detail.startswith("generating") for r in chosen),
            "busy_503": count("busy"), "budget_504": count("budget"), "restart": count("restart"),
            "errors": count("error"), "over_bound": sum(r.latency_s > r.bound_s for r in chosen),
            "p50_s": latency["p50"], "p95_s": latency["p95"], "max_s": latency["max"],
        })  # fmt: skip
    head = list(rows[0]) if rows else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join("" if row[h] is None else str(row[h]) for h in head) + " |" for row in rows]
    return rows, "\n".join(lines)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--disconnect-share", type=float, default=0.25, help="share of streamed asks/debates that leave early")
    parser.add_argument("--backend", default="llamacpp", choices=["llamacpp", "extractive"])
    parser.add_argument("--max-tokens", type=int, default=32, help="answer length limit")
    parser.add_argument("--turn-max-tokens", type=int, default=32, help="debate turn length limit")
    parser.add_argument("--queue-timeout", type=float, default=120.0, help="queue_timeout_s of the server")
    parser.add_argument("--generation-timeout", type=float, default=180.0, help="generation_timeout_s of the server")
    parser.add_argument("--restart-at", type=float, default=0.5, help="when to SIGTERM and restart, as a share of the run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--articles", type=Path, default=ARTICLES)
    parser.add_argument("--output", type=Path, help="JSON report (default: in the run folder)")
    return parser.parse_args(argv)


def _server_settings(args: argparse.Namespace) -> dict:
    """The app's settings for the run: short generations, no rebuttal rounds, a short shutdown grace."""
    return {
        "llm_backend": args.backend, "llm_max_tokens": args.max_tokens, "debate_turn_max_tokens": args.turn_max_tokens,
        "debate_rounds": 0, "queue_timeout_s": args.queue_timeout, "generation_timeout_s": args.generation_timeout,
        "shutdown_grace_s": 5,
    }  # fmt: skip


def _soak_app(app: AppProcess, args: argparse.Namespace) -> tuple[Soak, dict, int | None, float]:
    """Start the app, add the articles, run the soak, then SIGTERM the app:
    (the soak, its run figures, the final exit code, the final shutdown seconds)."""
    app.start()
    try:
        files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in sorted(args.articles.iterdir())]
        httpx.post(f"{app.base_url}/api/documents", files=files, timeout=900,
                   headers={"Origin": app.base_url}).raise_for_status()  # fmt: skip
        soak = Soak(app, args)
        run = asyncio.run(soak.run())
    finally:
        code, shutdown_s = app.terminate(30.0) if app.process and app.process.poll() is None else (None, 0.0)
        app.stop()
    run["final_exit_code"], run["final_shutdown_s"] = code, round(shutdown_s, 2)
    return soak, run, code, shutdown_s


def _checks(run: dict, code: int | None, data: dict, over: list[dict], errors: list[dict]) -> dict[str, bool]:
    """The pass/fail checks of the module docstring."""
    return {
        "queue_idle_at_end": run["final_queue"] == {"running": False, "waiting": 0},
        "exit_code_0_on_sigterm": run["restart"]["exit_code"] == 0 and code == 0,
        "registry_and_store_agree": data["registry_and_store_agree"] and not data["unfinished_documents"],
        "no_lost_or_half_written_documents": not data["lost_uploads"] and not data["deleted_but_present"],
        "debates_complete_or_stopped": not data["bad_debates"],
        "no_request_over_its_bound": not over,
        "no_errors": not errors,
    }


def _print_summary(markdown: str, report: dict, code: int | None, shutdown_s: float, output: Path) -> None:
    run, data, checks = report["run"], report["data"], report["checks"]
    print(markdown)
    print(f"restart: {run['restart']}; final shutdown: exit {code} in {shutdown_s:.1f} s; final queue {run['final_queue']}; "
          f"max waiting {report['max_queue_waiting']}")  # fmt: skip
    print(f"data: {data['documents']} documents, {data['registry_passages']} passages / {data['store_vectors']} vectors, "
          f"debates {data['debates']}, lost {len(data['lost_uploads'])}, bad debates {len(data['bad_debates'])}")  # fmt: skip
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'} {name}")
    print(f"report: {output}")


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    run_dir = Path(tempfile.mkdtemp(prefix="da-soak-"))
    settings = _server_settings(args)
    app = AppProcess(run_dir / "data", run_dir / "server.log", settings)
    soak, run, code, shutdown_s = _soak_app(app, args)
    data = check_data(run_dir / "data", soak.state, rounds_turns=3)
    rows, markdown = table(soak.records)
    over = [asdict(r) for r in soak.records if r.latency_s > r.bound_s]
    errors = [asdict(r) for r in soak.records if r.outcome == "error"]
    checks = _checks(run, code, data, over, errors)
    report = {
        "config": {**vars(args), "articles": str(args.articles), "output": str(args.output), **settings},
        "run": run, "table": rows, "data": data, "checks": checks,
        "over_bound": over[:20], "errors": errors[:20], "server_log": str(app.log_path),
        "max_queue_waiting": max((q["waiting"] for q in soak.queue_seen), default=0),
        "records": [asdict(r) for r in soak.records],
    }  # fmt: skip
    output = args.output or run_dir / "soak.json"
    output.write_text(json.dumps(report, indent=2), encoding="utf-8")
    _print_summary(markdown, report, code, shutdown_s, output)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
