"""Answers per minute with 1, 2 and 4 generation slots against one OpenAI-compatible server.

    python -m bench.generation_slots --corpus ../shared/corpus --questions ../shared/eval/dev.jsonl
    python -m bench.generation_slots --server llama --corpus ... --questions ... --asks 4

``--server concurrent`` (the default) is ``bench.concurrent_server``: it runs requests at the same
time, as a batching server (vLLM, llama.cpp's ``llama-server`` with parallel slots) does, each
reply taking ``--seconds-per-reply``. ``--server llama`` starts ``llama_cpp.server`` on the packaged
model, which runs one request at a time, and with ``--interrupt_requests False``: by default it
cuts a streaming reply short when another request arrives. ``--base-url`` measures any other
server already running.

After one untimed ask (the first pays for loading models), for each slot count ``--asks``
questions are put to a generation queue with that many slots at once, as that many users asking
together would, and the wall time until the last answer is taken. Part of an ask runs in this
process (retrieval, sentence choice, the rule checks), so even a server that runs one request at
a time gains a little from a second slot: one ask's checks overlap another's generation.
Reports answers per minute per slot count and its ratio to one slot, measured in one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

SLOTS = (1, 2, 4)


def measure_slots(base_url: str, model: str, corpus: Path, questions: list[str], data_dir: Path,
                  slots: tuple[int, ...] = SLOTS, api_key: str = "not-needed") -> dict:  # fmt: skip
    """Time ``questions`` asked all at once through the queue, for each slot count: one library,
    ingested once, and one chain; only the queue changes."""
    from assistant.core.settings import Settings
    from assistant.server.service import Service
    from assistant.server.generation_queue import GenerationQueue

    settings = Settings(data_dir=data_dir, llm_backend="openai", openai_base_url=base_url, openai_model=model,
                        openai_api_key=api_key, generation_slots=max(slots), stance_suggestions=False)  # fmt: skip
    service = Service(settings)
    service.library.ingest([str(corpus)])
    chain = service.ask_chain
    chain.ask(questions[0])  # not timed: the first ask pays for loading models, here and on the server
    rows = []
    for n in slots:
        queue = GenerationQueue(settings.queue_timeout_s, settings.generation_timeout_s, n)
        started = time.perf_counter()
        jobs = [queue.submit(lambda q=q: iter([chain.ask(q)])) for q in questions]
        answers = [list(job.events(timeout_s=3600))[-1] for job in jobs]
        seconds = time.perf_counter() - started
        rows.append({"slots": n, "asks": len(answers), "seconds": seconds, "answers_per_minute": 60 * len(answers) / seconds,
                     "declined": sum(a.declined for a in answers)})  # fmt: skip
    service.close()
    one = rows[0]["answers_per_minute"]
    for row in rows:
        row["ratio_to_one_slot"] = row["answers_per_minute"] / one
    return {"base_url": base_url, "model": model, "rows": rows}


def ask_questions(path: Path, limit: int) -> list[str]:
    """The first ``limit`` ask questions of a question set (JSON lines)."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [q["question"] for q in lines if q.get("mode", "ask") == "ask"][:limit]


@contextmanager
def llama_server() -> Iterator[tuple[str, str]]:
    """``llama_cpp.server`` on the packaged model, on 127.0.0.1; yields its ``/v1`` URL and model alias."""
    from bench.servers import free_port, llama_cpp_command

    port = free_port()
    command = llama_cpp_command(port, alias="local", api_key=None, extra=("--interrupt_requests", "False"))
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("llama_cpp.server did not start")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1", "local"
    finally:
        process.terminate()
        process.wait(timeout=30)


def markdown(report: dict) -> str:
    lines = ["## Generation slots", "", f"Server {report['server']} ({report['model']}), {report['rows'][0]['asks']} "
             "asks put to the queue at once.", "", "| slots | seconds | answers per minute | ratio to 1 slot |",
             "| --- | --- | --- | --- |"]  # fmt: skip
    lines += [f"| {r['slots']} | {r['seconds']:.1f} | {r['answers_per_minute']:.1f} | {r['ratio_to_one_slot']:.2f} |"
              for r in report["rows"]]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generation_slots", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--asks", type=int, default=8, help="questions asked at once (default 8)")
    parser.add_argument("--server", choices=["concurrent", "llama"], default="concurrent")
    parser.add_argument("--base-url", help="measure this OpenAI-compatible server instead (with --model)")
    parser.add_argument("--model", default="local")
    parser.add_argument("--seconds-per-reply", type=float, default=2.0, help="the concurrent server's reply time")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    for path in (args.corpus, args.questions):
        if not path.exists():
            parser.error(f"not found: {path}")
    questions = ask_questions(args.questions, args.asks)
    if not questions:
        parser.error(f"no ask question in {args.questions}")
    with tempfile.TemporaryDirectory(prefix="da-bench-slots-") as folder:
        if args.base_url:
            report = measure_slots(args.base_url, args.model, args.corpus, questions, Path(folder))
            report["server"] = args.base_url
        elif args.server == "llama":
            with llama_server() as (url, model):
                report = measure_slots(url, model, args.corpus, questions, Path(folder))
            report["server"] = "llama_cpp.server (one request at a time)"
        else:
            from bench.concurrent_server import concurrent_server

            with concurrent_server(args.seconds_per_reply) as (url, in_flight):
                report = measure_slots(url, "concurrent", args.corpus, questions, Path(folder))
            report["server"] = f"bench.concurrent_server ({args.seconds_per_reply} s a reply, at most {in_flight.most} at once)"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "generation_slots.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
