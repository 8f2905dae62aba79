"""The REST API's contract: what ``/api/openapi.json`` says is what the code does.

Checked by hand (ids past SQLite's integer range, wrong methods, HEAD on health, the error body of
every status, the NDJSON streams) and by schemathesis against the live app: real embedding model,
Chroma and uvicorn on 127.0.0.1, with ``DA_API_TOKEN`` set and sent as a bearer token. The fuzz runs
must find no 5xx, no status or body the schema does not declare, and no bad input may log a
traceback. Gradio's endpoints are held to the same rule: missing or wrong-type inputs get a clear
error, never a 500 or a traceback. The extractive backend stands in for the LLM.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from pydantic import SecretStr

from assistant.server.service import Service
from assistant.core.settings import Settings
from tests.conftest import ARTICLES
from tests.servers import serve_app
from ui import create_app

TOKEN = "contract-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PAST_SQLITE = 2**63  # one past SQLite's largest integer
ID_ROUTES = ["/api/debates/{}", "/api/debates/{}/markdown", "/api/debates/{}/brief", "/api/debates/{}/cards",
             "/api/debates/{}/docx", "/api/debates/{}/flow", "/api/spar/{}", "/api/spar/{}/scorecard",
             "/api/spar/{}/markdown", "/api/spar/{}/flow"]  # fmt: skip
# The routes that wait for the model: fuzzed only a little, in the slow lane.
MODEL_ROUTES = {("POST", "/api/ask"), ("POST", "/api/debate"), ("POST", "/api/spar")}
STREAMING_ROUTES = ["/api/ask", "/api/debate", "/api/spar"]


class LogWatch(logging.Handler):
    """Every log record of the app's loggers that carries a traceback or is an error."""

    LOGGERS = ("", "uvicorn", "gradio", "assistant", "ingest")

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.problems: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.problems.append(f"{record.name}: {record.getMessage()}" + (" (with traceback)" if record.exc_info else ""))

    def __enter__(self) -> LogWatch:
        for name in self.LOGGERS:  # after uvicorn configured its loggers, which drops earlier handlers
            logging.getLogger(name).addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self)


class CountRequests:
    """ASGI wrapper: how many HTTP requests reached the app, and the statuses it answered."""

    def __init__(self, app) -> None:
        self.app = app
        self.total = 0
        self.statuses: Counter[int] = Counter()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.total += 1

        async def counted(message) -> None:
            if message["type"] == "http.response.start":
                self.statuses[message["status"]] += 1
            await send(message)

        await self.app(scope, receive, counted)


@dataclass
class Served:
    url: str
    service: Service
    requests: CountRequests
    log: LogWatch
    client: httpx.Client = field(repr=False)


def _settings(data_dir) -> Settings:
    """A token server over the extractive baseline; uploads bounded small, so generated files stay small."""
    return Settings(data_dir=data_dir, llm_backend="extractive", verifier="rules", relevance="rules",
                    api_token=SecretStr(TOKEN), max_file_bytes=64 * 1024)  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    service = Service(_settings(tmp_path_factory.mktemp("contract")))
    service.library.ingest([str(ARTICLES / "skeptic.txt"), str(ARTICLES / "pro_engagement.txt")])
    counted = CountRequests(create_app(service))
    with serve_app(counted) as url, LogWatch() as log, httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
        yield Served(url, service, counted, log, client)
    service.close()


@pytest.fixture
def clean_log(served: Served, capfd: pytest.CaptureFixture) -> Iterator[Served]:
    """The server, and after the test: nothing it logged or printed (Gradio prints) was a traceback or an error."""
    served.log.problems.clear()
    yield served
    printed = capfd.readouterr()
    assert "Traceback" not in printed.err + printed.out, (printed.err + printed.out)[-3000:]
    assert not served.log.problems, served.log.problems[:5]


# --- Bounded ids ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("route", ID_ROUTES)
@pytest.mark.parametrize("bad_id", [PAST_SQLITE, 2**70, 0, -1])
def test_ids_out_of_range_are_a_clear_422_on_every_id_route(clean_log: Served, route: str, bad_id: int) -> None:
    response = clean_log.client.get(route.format(bad_id))
    assert response.status_code == 422, response.text[:300]
    detail = response.json()["detail"]
    assert isinstance(detail, str) and ("debate_id" in detail or "session_id" in detail), detail


def test_largest_sqlite_id_is_a_plain_404(clean_log: Served) -> None:
    for route in ID_ROUTES:
        response = clean_log.client.get(route.format(2**63 - 1))
        assert response.status_code == 404, (route, response.text[:300])
        assert isinstance(response.json()["detail"], str)


# --- Methods ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("PUT", "/api/health", {"GET", "HEAD"}),
        ("POST", "/api/health", {"GET", "HEAD"}),
        ("DELETE", "/api/search", {"POST"}),
        ("GET", "/api/ask", {"POST"}),
        ("PUT", "/api/documents", {"GET", "POST"}),
        ("GET", "/api/documents/abc", {"PATCH", "DELETE"}),
        ("POST", "/api/debates/1", {"GET"}),
        ("DELETE", "/api/spar/1/markdown", {"GET"}),
        ("OPTIONS", "/api/spar", {"GET", "POST"}),
    ],
)
def test_wrong_methods_are_405_with_the_allowed_ones(clean_log: Served, method: str, path: str, allowed: set) -> None:
    response = clean_log.client.request(method, path)
    assert response.status_code == 405, response.text[:300]
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed
    assert isinstance(response.json()["detail"], str)


def test_unknown_api_paths_are_a_json_404(clean_log: Served) -> None:
    for method in ("GET", "POST", "DELETE"):
        response = clean_log.client.request(method, "/api/no-such-route")
        assert response.status_code == 404
        assert isinstance(response.json()["detail"], str)


def test_head_on_health_answers_200_without_a_token(clean_log: Served) -> None:
    response = httpx.head(f"{clean_log.url}/api/health")
    assert response.status_code == 200 and response.content == b""
    assert httpx.head(f"{clean_log.url}/api/documents").status_code == 401  # only health is open


# --- Error bodies -----------------------------------------------------------------------------------------------

def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def test_every_error_status_is_declared_with_a_string_detail(clean_log: Served) -> None:
    spec = clean_log.client.get("/api/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # FastAPI's array shape is gone
    declared = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            declared[method.upper(), path] = set(operation["responses"])
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                schema = _resolve(spec, response["content"]["application/json"]["schema"])
                assert schema["properties"]["detail"]["type"] == "string", (method, path, status)
                assert schema["required"] == ["detail"]
                if status == "503":
                    assert "Retry-After" in response["headers"], (method, path)
            if path != "/api/health":
                assert {"401", "403"} <= declared[method.upper(), path], (method, path)
    for route in ID_ROUTES:
        assert {"404", "422"} <= declared["GET", route.format("{debate_id}" if "debates" in route else "{session_id}")]
    assert {"404", "422", "503", "504"} <= declared["POST", "/api/ask"]
    assert {"404", "422", "503"} <= declared["POST", "/api/debate"]
    assert {"404", "409", "422", "503"} <= declared["POST", "/api/spar"]
    assert {"413", "422"} <= declared["POST", "/api/documents"]
    assert {"404", "422"} <= declared["PATCH", "/api/documents/{doc_id}"]
    assert "404" in declared["DELETE", "/api/documents/{doc_id}"]


def test_streams_are_documented_as_ndjson(clean_log: Served) -> None:
    spec = clean_log.client.get("/api/openapi.json").json()
    for path in STREAMING_ROUTES:
        content = spec["paths"][path]["post"]["responses"]["200"]["content"]
        assert "application/x-ndjson" in content, path
        assert "type" in content["application/x-ndjson"].get("description", "") + json.dumps(content), path


@pytest.mark.parametrize(
    "path, body, names",
    [
        ("/api/search", {}, "query"),
        ("/api/search", {"query": "Copper Lake", "k": 0}, "k"),
        ("/api/search", {"query": ["a"]}, "query"),
        ("/api/ask", {"question": "ok", "doc_ids": "x"}, "doc_ids"),
        ("/api/spar", {"session_id": PAST_SQLITE, "text": "x"}, "session_id"),
    ],
)
def test_request_validation_errors_have_a_string_detail(clean_log: Served, path: str, body: dict, names: str) -> None:
    response = clean_log.client.post(path, json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, str) and names in detail, detail
    not_json = clean_log.client.post(path, content=b"{not json", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 422 and isinstance(not_json.json()["detail"], str)


# --- Gradio endpoints -------------------------------------------------------------------------------------------

BAD_INPUTS = {"nothing": lambda n: [], "nulls": lambda n: [None] * n, "objects": lambda n: [{"x": 1}] * n,
              "numbers": lambda n: [12345] * n, "huge": lambda n: [PAST_SQLITE] * n, "strings": lambda n: ["abc"] * n,
              "lists": lambda n: [[1, 2]] * n}  # fmt: skip
# What an error meant for a user never shows: Python's own messages about types, or object reprs.
NOT_FOR_USERS = ("object at 0x", "NoneType", "not supported between", "int() argument", "invalid literal",
                 "Traceback", "For further information visit")  # fmt: skip


def _gradio_endpoints(client: httpx.Client) -> dict[str, int]:
    """Every named Gradio endpoint and how many inputs it takes."""
    info = client.get("/gradio_api/info").json()
    return {name: len(endpoint["parameters"]) for name, endpoint in info["named_endpoints"].items()}


@pytest.mark.parametrize("shape", list(BAD_INPUTS))
def test_gradio_endpoints_refuse_missing_or_wrong_inputs_clearly(clean_log: Served, shape: str) -> None:
    client = clean_log.client
    for name, n_inputs in _gradio_endpoints(client).items():
        data = BAD_INPUTS[shape](n_inputs)
        started = client.post(f"/gradio_api/call{name}", json={"data": data})
        assert started.status_code == 200, (name, started.text[:300])
        events = client.get(f"/gradio_api/call{name}/{started.json()['event_id']}").text
        last = [line for line in events.splitlines() if line.startswith("data:")][-1]
        assert not any(text in last for text in NOT_FOR_USERS), (name, data, last[:500])
        if "event: error" in events:
            message = json.loads(last.removeprefix("data:"))["error"]
            assert message and len(message) < 400, (name, data, message)
        # Gradio's direct (queue-skipping) route: never a 500.
        direct = client.post(f"/gradio_api/run{name}", json={"data": data})
        assert direct.status_code < 500, (name, data, direct.text[:300])


def test_gradio_search_with_an_empty_body_is_not_a_500(clean_log: Served) -> None:
    for route in ("/gradio_api/run/do_search", "/gradio_api/call/do_search"):
        for body in ({"data": []}, {}):
            response = clean_log.client.post(route, json=body)
            assert response.status_code < 500, (route, body, response.text[:300])


# --- Schemathesis against the live app -------------------------------------------------------------------------

def _checks() -> list:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                                   status_code_conformance)  # fmt: skip

    return [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass
class FuzzRun:
    requests: int
    seconds: float
    failures: list[str]
    statuses: Counter[int]


def _fuzz(served: Served, model_routes: bool, examples: int, derandomize: bool) -> FuzzRun:
    """Schemathesis over the live schema: for each operation (the model routes, or all the others), up
    to ``examples`` valid and ``examples`` invalid generated requests, each sent with the bearer token
    and checked for no 5xx, a declared status, a declared content type and a body matching its schema.
    Every operation runs, failing or not; the failures are returned, one line each."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{served.url}/api/openapi.json", headers=AUTH)
    checks = _checks()
    failures: list[str] = []
    sent_before, statuses_before, started = served.requests.total, served.requests.statuses.copy(), time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        if ((operation.method.upper(), operation.path) in MODEL_ROUTES) != model_routes:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
                      phases=[Phase.generate], suppress_health_check=list(HealthCheck),
                      verbosity=Verbosity.quiet)  # fmt: skip
            @given(case=operation.as_strategy(generation_mode=mode))
            def send(case) -> None:
                _drop_framing_headers(case)
                case.call_and_validate(headers=AUTH, checks=checks, timeout=120)

            try:
                send()
            except Unsatisfiable:  # no invalid request exists for an operation without inputs
                assert mode == GenerationMode.NEGATIVE and not _has_inputs(operation), operation.label
            except (Exception, BaseExceptionGroup) as exc:  # a check failed (schemathesis raises a group): go on
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {str(exc)[:1500]}")
    return FuzzRun(served.requests.total - sent_before, time.monotonic() - started, failures,
                   served.requests.statuses - statuses_before)  # fmt: skip


# Headers that frame the HTTP message itself. A generated "content-length: n" is refused by the HTTP
# parser (uvicorn's h11) with a bare 400 before the app sees the request, so it tests the parser, not the API.
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "host", "connection", "expect", "upgrade"})


def _drop_framing_headers(case) -> None:
    for name in [name for name in (case.headers or {}) if name.lower() in FRAMING_HEADERS]:
        del case.headers[name]


def _has_inputs(operation) -> bool:
    return bool(operation.path_parameters or operation.query or operation.headers or operation.body)


def _saved_debate_and_session(service: Service) -> None:
    """One saved debate and one spar session, so generated small ids sometimes find them (200s checked too)."""
    if not service.transcripts.list() and not service.transcripts.list(spar=True):
        list(service.debate_chain.stream("Should the Copper Lake agreement be revived?", 0))
        service.spar_chain.start("Should the Copper Lake agreement be revived?", "advocate", 0)


def _assert_clean(run: FuzzRun, served: Served, capfd: pytest.CaptureFixture, at_least: int) -> None:
    printed = capfd.readouterr()
    with capfd.disabled():  # the run's size, shown with -s
        statuses = dict(sorted(run.statuses.items()))
        print(f"\nschemathesis sent {run.requests} requests in {run.seconds:.1f} s; statuses: {statuses}")
    assert not run.failures, "\n\n".join(run.failures[:10])
    assert run.requests >= at_least, run.requests
    assert "Traceback" not in printed.err + printed.out, (printed.err + printed.out)[-3000:]
    assert not served.log.problems, served.log.problems[:5]


@pytest.mark.slow  # several seconds: the fast lane stays under two minutes
def test_schemathesis_finds_nothing_on_the_non_model_routes(served: Served, capfd: pytest.CaptureFixture) -> None:
    """The fast lane: a few valid and invalid requests per operation (about 200 in all, seconds)."""
    _saved_debate_and_session(served.service)
    served.log.problems.clear()
    _assert_clean(_fuzz(served, model_routes=False, examples=8, derandomize=True), served, capfd, at_least=150)


@pytest.mark.slow
def test_schemathesis_5000_requests_on_the_non_model_routes(served: Served, capfd: pytest.CaptureFixture) -> None:
    """The slow lane: at least 5,000 generated requests, a new draw each run."""
    _saved_debate_and_session(served.service)
    served.log.problems.clear()
    _assert_clean(_fuzz(served, model_routes=False, examples=200, derandomize=False), served, capfd, at_least=5000)


@pytest.mark.slow
def test_schemathesis_a_few_examples_on_the_model_routes(served: Served, capfd: pytest.CaptureFixture) -> None:
    """Ask, debate and spar (the extractive baseline as the model): a handful of requests each."""
    served.log.problems.clear()
    _assert_clean(_fuzz(served, model_routes=True, examples=4, derandomize=False), served, capfd, at_least=6)
