"""REST API under ``/api``: health, ask, debate and spar (streamed), documents, saved debates and spar sessions.

Streams are NDJSON (one JSON object a line, ``type`` says which): a ``queued`` line while
the request waits for the model, ``token`` lines as text is generated, then the result.
With credentials set, every call but ``/api/health`` needs them (``assistant.server.access``).
OpenAPI docs are served at ``/api/docs``. (No ``from __future__ import annotations`` here: FastAPI
reads the annotations of the nested endpoint functions at run time.)
"""


import os
import shutil
import unicodedata
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Literal, TYPE_CHECKING, TypeVar

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi import Path as PathParam
from fastapi import Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.formparsers import MultiPartException
from starlette.routing import Match

from assistant.core import personas

from assistant.present.events import ask_event, debate_dict, debate_event, spar_dict, spar_events
from assistant.chains.debate import DebateError, check_criterion, check_personas
from assistant.present.docx_export import DOCX_MEDIA_TYPE, NoCardsError, motion_docx, motion_filename, to_docx
from assistant.chains.flow import flow_dict
from assistant.storage.library import UnknownDocumentError, upload_folder
from assistant.core.errors import UserError
from assistant.core.limits import MAX_ID, MAX_K, MIN_ID, MIN_K
from assistant.core.passage import NumberedPassage
from assistant.server.responses import GenerationResponse, user_error_response
from assistant.core.inputs import QueryError, validate_history, validate_query, validate_text
from assistant.server.generation_queue import Queued
from assistant.chains.spar import SparChain
from assistant.present.transcript_export import to_spar_markdown
from assistant.core.text import strip_terminal_escapes
from assistant.core.debate_record import Debate
from assistant.present.transcript_export import to_brief, to_json, to_markdown
from assistant.server.uploads import UploadTooLarge, read_form
from ingest.fetch import FetchError, require_web_url
from ingest.pipeline import DuplicateUploadError, stored_document_ids
from assistant.core.sides import ALIASES, STANCES, validate_stance

if TYPE_CHECKING:  # annotations only: the routes are given the process's service (``assistant.server.app``)
    from assistant.server.service import Service

# Saved debates have SQLite row ids: a larger number would overflow SQLite's integer (a 500), not miss.
DebateId = Annotated[int, PathParam(ge=MIN_ID, le=MAX_ID, description="A saved debate's id.")]
# A spar session is a saved debate with the user's side set: the same ids.
SessionId = Annotated[int, PathParam(ge=MIN_ID, le=MAX_ID, description="A spar session's id.")]
API_PREFIX = "/api"
T = TypeVar("T")


class ErrorMessage(BaseModel):
    """The body of every error this API answers with, FastAPI's own request checks included: one
    sentence for a person (and the string clients already read), never a list of validator records."""

    detail: str = Field(description="What was wrong, and what to send instead.")


_ERROR_CAUSES = {
    400: "The body could not be read at all (e.g. JSON that is not UTF-8).",
    401: "No or wrong credentials: send a bearer token, basic auth or the session cookie (when any is configured).",
    403: "Refused before routing: a Host other than loopback on a server without credentials, or a cross-site write.",
    404: "An id the server does not hold: a document (also in doc_ids), a saved debate or a spar session; or a "
         "motion no saved debate or spar session has cards on.",
    409: "The spar session is over: start a new one.",
    413: "A file is larger than max_file_bytes: refused while it uploads, and nothing of the request is added.",
    429: "Too many wrong credentials from this address lately: wait Retry-After seconds.",
    422: "The request is malformed or refused: a missing or wrong-type field, an empty or oversized text, an id "
         "out of range, a bad side, stance or number of rounds.",
    503: "Try again later (see Retry-After): the model queue is full, the server is shutting down, or the "
         "Chroma server or the database server is unreachable.",
    504: "The generation ran over its time budget and was stopped.",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}}


def _errors(*statuses: int) -> dict[int | str, dict]:
    """The OpenAPI ``responses`` of the error statuses a route can answer with, each an ``ErrorMessage``
    in JSON. The content is spelled out (not ``model=``, which FastAPI files under the route's own media
    type: text/plain for the Markdown routes, whose errors are JSON all the same)."""
    content = {"application/json": {"schema": ErrorMessage.model_json_schema()}}
    return {status: {"description": _ERROR_CAUSES[status], "content": content,
                     **({"headers": _RETRY_AFTER} if status in (429, 503) else {})} for status in statuses}  # fmt: skip


# The Word exports: the document's bytes, offered as a download named after the debate or the motion.
_DOCX_CONTENT = {DOCX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}
_DOCX_RESPONSE = {
    "description": "The cards grouped by side as a .docx file (Content-Disposition: attachment; filename=debate-N.docx)",
    "content": _DOCX_CONTENT,
}
_MOTION_DOCX_RESPONSE = {
    "description": "Every card on the motion by side, each quote once, as a .docx file (Content-Disposition: "
                   "attachment; filename=cards-<the motion's words in ASCII>.docx)",
    "content": _DOCX_CONTENT,
}


# NDJSON streams: one JSON object a line, its "type" says which (the schema below is one line's). A
# stream whose 200 went out ends with an "error" line instead of a status when something fails.
ASK_LINES = ("queued", "sources", "quote", "token", "checked", "answer", "error")
DEBATE_LINES = ("queued", "start", "turn_start", "token", "card", "turn", "debate", "error")
BALLOT_DOC = (
    "The last turn is the judge's ballot (role `moderator`, kind `summary`). Its `clashes` list each clash: "
    "`number`, `argument` (the card answered), `answer` (the card answering it), `winner` (the label of the card "
    "that holds it) and `reason`. Its `ballot` object holds `criterion`, `clashes`, `dropped` (labels of the "
    "arguments the other side could answer and did not), `unweighed` (labels no later speech could name, so not weighed), "
    "`new_in_rebuttal` (labels of cards after the openings that answer no card, not weighed), `decisive` (the clash "
    "the judge weighs most on the criterion, counted twice; null when none was named), `score` (per side), "
    "`decision` (`advocate` or `skeptic`: the side that wins) and `rfd` (the reason for decision, citing cards only)."
)
SPAR_LINES = ("session", "queued", "mark", "turn_start", "token", "card", "turn", "scorecard", "spar", "error")


def _ndjson(lines: tuple[str, ...]) -> dict:
    """A 200 streamed as ``application/x-ndjson``, with the kinds of line it sends in order."""
    line = {"type": "object", "required": ["type"], "additionalProperties": True,
            "properties": {"type": {"type": "string", "enum": list(lines)}}}  # fmt: skip
    return {"description": f"NDJSON, one JSON object a line; its type is one of: {', '.join(lines)} (an error "
                           "line, with status, detail and retry_after, ends a stream that failed after its start).",
            "content": {"application/x-ndjson": {"schema": line}}}  # fmt: skip


def _ndjson_or_json(lines: tuple[str, ...]) -> dict:
    """``_ndjson``, or (without ``"stream": true``) the final result alone as one JSON document."""
    streamed = _ndjson(lines)
    unstreamed = 'Without "stream": true, the answer as one JSON document; with it, '
    return {"description": unstreamed + streamed["description"],
            "content": {"application/json": {"schema": {"type": "object"}}, **streamed["content"]}}  # fmt: skip


class AskRequest(BaseModel):
    question: str = Field(description="The question (follow-ups are read in the light of history).")
    history: list[tuple[str, str]] = Field(default_factory=list, description="Earlier (question, answer) pairs.")
    k: int | None = Field(None, ge=MIN_K, le=MAX_K, description="Passages to show the model.")
    doc_ids: list[str] | None = Field(None, description="Only these documents.")
    stream: bool = Field(False, description="NDJSON stream of queued/token/answer lines instead of one JSON answer.")


class SearchRequest(BaseModel):
    query: str = Field(description="What to look for.")
    k: int | None = Field(None, ge=MIN_K, le=MAX_K, description="How many passages (default from settings).")
    doc_ids: list[str] | None = Field(None, description="Only these documents.")
    mode: Literal["hybrid", "dense", "bm25"] | None = Field(None, description="Retriever (default from settings).")


class PersonaModel(BaseModel):
    name: str
    stance: str = ""


class DocumentChange(BaseModel):
    stance: str = Field(description="for or against the motion, or unknown (stored as advocate, skeptic, unknown)")


class DebateRequest(BaseModel):
    motion: str
    rounds: int | None = Field(None, ge=0, description="Rebuttal rounds (default from settings).")
    advocate: PersonaModel | None = None
    skeptic: PersonaModel | None = None
    doc_ids: list[str] | None = None
    criterion: str | None = Field(None, description="What the judge's ballot weighs the clashes by, for example "
                                                    "\"impact on regional security\" (default: the most direct evidence on the motion).")


class SparRequest(BaseModel):
    session_id: int | None = Field(None, ge=MIN_ID, le=MAX_ID,
                                   description="Play the next round of this session; leave out to start a new one.")
    motion: str | None = Field(None, description="A new session's motion (required without session_id).")
    side: str | None = Field(None, description="The side you argue in a new session: for or against the motion (advocate or skeptic; required "
                                               "without session_id); the assistant takes the other.")
    rounds: int | None = Field(None, ge=0, description="A new session's rebuttal rounds between opening and closing "
                                                       "(default from settings).")
    doc_ids: list[str] | None = Field(None, description="A new session: only these documents.")
    text: str = Field(description="Your turn for this round: free text, at most spar_max_words words.")


def build_router(service: "Service") -> APIRouter:
    """Every route under /api, registered by group in the order the OpenAPI docs list them, then the
    fallback that answers a wrong method (405) or an unknown path (404) under /api."""
    # Refused before routing by assistant.server.access.AccessMiddleware: 403 for a Host it does not serve or a
    # cross-site write, 401 without credentials (every route but /api/health).
    public = APIRouter(prefix=API_PREFIX, responses=_errors(403))
    # The dependency only shows the bearer scheme in the OpenAPI docs ("Authorize").
    protected = APIRouter(prefix=API_PREFIX, dependencies=[Depends(HTTPBearer(auto_error=False))],
                          responses=_errors(401, 403, 429))  # fmt: skip
    _add_health_route(public, service)
    _add_generation_routes(protected, service)
    _add_search_route(protected, service)
    _add_saved_debate_routes(protected, service)
    _add_spar_routes(protected, service)
    _add_document_routes(protected, service)
    router = APIRouter()
    router.include_router(public)
    router.include_router(protected)
    _add_fallback_route(router, [*public.routes, *protected.routes])
    return router


class _NoRoute:
    """Last under /api, for every method (an ASGI app, not a function: Starlette would limit a function
    endpoint to GET): a path that no route serves is a 404, one served only for other methods a 405 that
    names them (``Allow``). Without it the Gradio app, mounted at "" after the API, would answer both with
    its own 404: Starlette prefers a route that matches the whole request (the mount matches every path
    and method) to one that matches all but the method."""

    def __init__(self, routes: list) -> None:
        self.routes = routes

    async def __call__(self, scope, receive, send) -> None:
        allowed = sorted({method for route in self.routes if route.matches(scope)[0] != Match.NONE
                          for method in route.methods})  # fmt: skip
        if allowed:
            response = JSONResponse({"detail": f"{scope['method']} is not allowed on {scope['path']}; use "
                                     f"{', '.join(allowed)}"}, 405, headers={"Allow": ", ".join(allowed)})  # fmt: skip
        else:
            response = JSONResponse({"detail": f"no API route {scope['path']}; /api/docs lists them"}, 404)
        await response(scope, receive, send)


def _add_fallback_route(router: APIRouter, routes: list) -> None:
    """``_NoRoute`` over ``routes``, after them."""
    # Starlette serves an endpoint that is not a function as an ASGI app; its type names functions only.
    router.add_route(API_PREFIX + "/{path:path}", _NoRoute(routes), include_in_schema=False)  # type: ignore[arg-type]


def _add_health_route(router: APIRouter, service: "Service") -> None:
    """The one route open without credentials: monitors poll it."""

    @router.head("/health", summary="Liveness only: 200 and no body", response_class=Response)
    def health_head() -> Response:
        return Response()

    @router.get("/health", summary="Liveness, library size and the model queue")
    def health() -> dict:
        return {
            "status": "ok",
            "documents": len(service.library.documents()),
            "llm_backend": service.settings.llm_backend,
            "queue": {"running": service.queue.running, "waiting": service.queue.waiting,
                      "slots": service.queue.slots, "busy_slots": service.queue.running_count},
        }


def _queued_or(line: Callable[[object], dict | None]) -> Callable[[object], dict | None]:
    """``line`` for a chain's events, with the server's own line while the request waits for the model."""
    return lambda item: {"type": "queued", "ahead": item.ahead} if isinstance(item, Queued) else line(item)


def _add_generation_routes(router: APIRouter, service: "Service") -> None:
    """Ask, debate and spar: the routes that wait for the model (through ``service.queue``) and stream."""
    _add_ask_route(router, service)
    _add_debate_route(router, service)
    _add_spar_route(router, service)


def _add_ask_route(router: APIRouter, service: "Service") -> None:
    @router.post("/ask", summary="Answer a question with validated citations",
                 responses={200: _ndjson_or_json(ASK_LINES), **_errors(400, 404, 422, 503, 504)})  # fmt: skip
    def ask(request: AskRequest):
        # Refuse bad questions or history (422) and unknown documents (404) before any streaming starts.
        _check_question(service, request.question)
        _check_text(lambda: validate_history(request.history, service.settings.max_question_chars))
        _check_doc_ids(service, request.doc_ids)
        # The generation runs on the server's worker and is cancelled if the client goes away.
        return GenerationResponse(
            service.queue,
            lambda: service.ask_chain.stream(request.question, request.history, k=request.k, doc_ids=request.doc_ids),
            _queued_or(ask_event), stream=request.stream, is_result=lambda e: e["type"] == "answer",
        )  # fmt: skip


def _add_debate_route(router: APIRouter, service: "Service") -> None:
    @router.post("/debate", summary="Stage a debate; streamed as NDJSON", description=BALLOT_DOC,
                 status_code=200, response_class=GenerationResponse,
                 responses={200: _ndjson(DEBATE_LINES), **_errors(400, 404, 422, 503)})  # fmt: skip
    def debate(request: DebateRequest):
        advocate, skeptic = check_personas(_persona(request.advocate, personas.ADVOCATE),
                                           _persona(request.skeptic, personas.SKEPTIC))  # DebateError: 422
        _check_question(service, request.motion)
        _check_doc_ids(service, request.doc_ids)
        if request.rounds is not None and request.rounds > service.settings.debate_max_rounds:
            raise HTTPException(422, f"rounds must be at most {service.settings.debate_max_rounds}")
        criterion = check_criterion(request.criterion)  # DebateError: 422
        # Chain errors become an "error" line; a client that goes away stops the debate (saved as "stopped").
        return GenerationResponse(
            service.queue,
            lambda: service.debate_chain.stream(request.motion, request.rounds, advocate, skeptic, request.doc_ids, criterion),
            _queued_or(debate_event),
        )


def _add_spar_route(router: APIRouter, service: "Service") -> None:
    @router.post("/spar",
                 summary="Play your turn of a spar session (without session_id: start one); streamed as NDJSON",
                 status_code=200, response_class=GenerationResponse,
                 responses={200: _ndjson(SPAR_LINES), **_errors(400, 404, 409, 422, 503)})  # fmt: skip
    def spar(request: SparRequest):
        """Each sentence of your turn is marked (a "mark" line: supported, contradicted or not found,
        with the deciding passage), then the assistant answers with cards.

        With a model to judge (`spar_verifier` "rules+llm", the default, on the llamacpp or openai
        backend), each sentence first gets the rules' mark at once as a line with `"final": false`;
        once all of them are out, the model's Yes/No judge confirms or revises every supported one
        and decides those the rules left undecided, and a line with `"final": true` follows for each
        sentence, in the same order (a withdrawn mark is "not found", with the reason "the model
        judged the evidence does not say this"). Only
        final marks are saved, scored and exported. Without the judge each sentence gets its final
        mark only."""
        # Everything that can be refused is refused here, before the queue: a bad turn, side, motion or
        # document (422/404), an unknown or finished session (404/409); a refused request saves nothing.
        chain = service.spar_chain
        if request.session_id is None:
            _check_turn(chain, request.text)
            session = _start_spar(service, chain, request)
        else:
            given = [name for name in ("motion", "side", "rounds", "doc_ids") if getattr(request, name) is not None]
            if given:
                raise HTTPException(422, f"session_id continues a saved session; leave out {', '.join(given)}")
            session = _spar_session(service, request.session_id)
            if chain.is_over(session):
                raise HTTPException(409, f"spar session {session.id} is over; start a new one")
            # The round and the turn, as play checks them when called (a turn the assistant has not answered
            # yet is answered first; the text may then be empty). Nothing runs until the worker iterates.
            _check_turn(chain, request.text, lambda: chain.check_play(session.id, request.text))
        # Chain errors become an "error" line; a client that goes away stops the turn (saved as "stopped"; a
        # turn of the user's left unanswered is answered first by the next request).
        plays_turn = bool(request.text.strip())
        response = GenerationResponse(service.queue, lambda: chain.play(session.id, request.text),
                                      _queued_or(spar_events(chain, plays_turn)))  # fmt: skip
        response.headers["X-Spar-Session"] = str(session.id)  # known even if the queue wait runs out
        return response


def _add_search_route(router: APIRouter, service: "Service") -> None:
    """Retrieval on its own: no model, no queue, so it stays fast while generations wait."""

    @router.post("/search", summary="Top-k passages for a query: retrieval only, no model, no queue",
                 responses=_errors(400, 404, 422, 503))  # fmt: skip
    def search(request: SearchRequest) -> list[dict]:
        _check_question(service, request.query)
        _check_doc_ids(service, request.doc_ids)
        hits = service.retriever.retrieve(request.query, request.k, doc_ids=request.doc_ids, mode=request.mode)
        return [
            {**NumberedPassage(rank, hit).as_dict(), "score": hit.score, "dense_similarity": hit.dense_similarity,
             "lexical_score": hit.lexical_score}
            for rank, hit in enumerate(hits, start=1)
        ]  # fmt: skip


def _add_saved_debate_routes(router: APIRouter, service: "Service") -> None:
    """Saved debates: the list, one as JSON, and its exports (Markdown, brief, cards, Word, flow); and
    every card on a motion, from all of them and the spar sessions, as one Word document."""

    @router.get("/debates", summary="Saved debates, newest first")
    def debates() -> list[dict]:
        return [
            {"id": i, "motion": m, "created_at": c, "status": s, "turns": n} for i, m, c, s, n in service.transcripts.list()
        ]

    @router.get("/debates/{debate_id}", summary="One saved debate", responses=_errors(404, 422))
    def get_debate(debate_id: DebateId) -> dict:
        return debate_dict(_debate(service, debate_id))

    @router.get("/debates/{debate_id}/markdown", summary="A saved debate as Markdown", response_class=PlainTextResponse,
                responses=_errors(404, 422))  # fmt: skip
    def debate_markdown(debate_id: DebateId) -> str:
        return to_markdown(_debate(service, debate_id))

    @router.get("/debates/{debate_id}/brief", summary="Every card of a saved debate, grouped by side (Markdown)",
                response_class=PlainTextResponse, responses=_errors(404, 422))  # fmt: skip
    def debate_brief(debate_id: DebateId) -> str:
        return to_brief(_debate(service, debate_id))

    @router.get("/debates/{debate_id}/cards", summary="Per turn and card: tag, quote, passage, document and its stance",
                responses=_errors(404, 422))  # fmt: skip
    def debate_cards(debate_id: DebateId) -> dict:
        return to_json(_debate(service, debate_id))

    @router.get("/debates/{debate_id}/docx", summary="Every card of a saved debate by side, as a Word document",
                response_class=Response, responses={200: _DOCX_RESPONSE, **_errors(404, 422)})  # fmt: skip
    def debate_docx(debate_id: DebateId) -> Response:
        return Response(to_docx(_debate(service, debate_id)), media_type=DOCX_MEDIA_TYPE,
                        headers={"Content-Disposition": f'attachment; filename="debate-{debate_id}.docx"'})  # fmt: skip

    @router.get("/debates/{debate_id}/flow",
                summary="A saved debate's flow sheet: one column per speech, one row per argument, dropped ones marked",
                responses=_errors(404, 422))  # fmt: skip
    def debate_flow(debate_id: DebateId) -> dict:
        return flow_dict(_debate(service, debate_id))

    @router.get("/cards/docx", summary="Every card on a motion, from all saved debates and spar sessions, as one Word file",
                description="The saved debates and spar sessions whose motion matches (case, spacing and punctuation "
                            "aside), oldest first; cards by side (for, against the motion), a quote cut from the same "
                            "document more than once filed once. 404 when none of them has a card.",
                response_class=Response, responses={200: _MOTION_DOCX_RESPONSE, **_errors(404, 422)})  # fmt: skip
    def motion_cards_docx(motion: Annotated[str, Query(description="The motion, as debated.")]) -> Response:
        motion = _check_text(lambda: validate_text(motion, service.settings.max_question_chars, "motion"))
        try:
            document = motion_docx(motion, service.transcripts.on_motion(motion))
        except NoCardsError as exc:
            raise HTTPException(404, str(exc)) from exc
        return Response(document, media_type=DOCX_MEDIA_TYPE,
                        headers={"Content-Disposition": f'attachment; filename="{motion_filename(motion)}"'})  # fmt: skip


def _add_spar_routes(router: APIRouter, service: "Service") -> None:
    """Saved spar sessions: the list, one as JSON (with its next round and scorecard), the scorecard, Markdown, flow."""

    @router.get("/spar", summary="Saved spar sessions, newest first")
    def spar_sessions() -> list[dict]:
        return [
            {"id": i, "motion": m, "created_at": c, "status": s, "turns": n}
            for i, m, c, s, n in service.transcripts.list(spar=True)
        ]

    @router.get("/spar/{session_id}", summary="One spar session, with the round you play next and the scorecard so far",
                responses=_errors(404, 422))  # fmt: skip
    def get_spar(session_id: SessionId) -> dict:
        return spar_dict(service.spar_chain, _spar_session(service, session_id), scorecard=True)

    @router.get("/spar/{session_id}/scorecard", summary="A spar session's scorecard (so far, if it is not over)",
                responses=_errors(404, 422))  # fmt: skip
    def spar_scorecard(session_id: SessionId) -> dict:
        return asdict(service.spar_chain.scorecard(_spar_session(service, session_id)))

    @router.get("/spar/{session_id}/markdown", summary="A spar session as Markdown, scorecard included",
                response_class=PlainTextResponse, responses=_errors(404, 422))  # fmt: skip
    def spar_markdown(session_id: SessionId) -> str:
        session = _spar_session(service, session_id)
        return to_spar_markdown(session, service.spar_chain.scorecard(session))

    @router.get("/spar/{session_id}/flow",
                summary="A spar session's flow sheet: your claims, the cards that answer them, dropped ones marked",
                responses=_errors(404, 422))  # fmt: skip
    def spar_flow(session_id: SessionId) -> dict:
        return flow_dict(_spar_session(service, session_id))


def _add_document_routes(router: APIRouter, service: "Service") -> None:
    """The library: list, add (multipart upload, URL or text), change a stance, delete."""

    @router.get("/documents", summary="Documents in the library")
    def documents() -> list[dict]:
        return [asdict(d) for d in service.library.documents()]

    @router.post("/documents", summary="Add files, a URL and/or pasted text", openapi_extra=_UPLOAD_FORM,
                 responses=_errors(413, 422, 503))  # fmt: skip
    async def add_documents(request: Request) -> list[dict]:
        # Read here, not by FastAPI's File() parameters: each file is checked against max_file_bytes
        # while it streams in (413 at once), instead of after the whole request was spooled to disk.
        try:
            form = await read_form(request, service.settings.max_file_bytes)
        except UploadTooLarge as exc:
            raise HTTPException(413, exc.message) from exc
        except MultiPartException as exc:
            raise HTTPException(422, exc.message) from exc
        try:
            files = [f for f in form.getlist("files") if isinstance(f, StarletteUploadFile)]
            fields = {key: value for key in ("url", "text", "title", "stance") if isinstance(value := form.get(key), str)}
            return await run_in_threadpool(_add_documents, service, files, **fields)
        finally:
            await form.close()

    @router.patch("/documents/{doc_id}", summary="Change a document's stance (nothing is re-embedded)",
                  responses=_errors(400, 404, 422, 503))  # fmt: skip
    def update_document(doc_id: str, change: DocumentChange) -> dict:
        try:
            return asdict(service.library.set_stance(doc_id, change.stance))
        except UnknownDocumentError as exc:
            raise HTTPException(404, str(exc)) from exc

    @router.delete("/documents/{doc_id}", summary="Delete a document and its passages",
                   responses=_errors(404, 422, 503))  # fmt: skip
    def delete_document(doc_id: str) -> dict:
        try:
            record = service.library.delete(doc_id)
        except UnknownDocumentError as exc:
            raise HTTPException(404, str(exc)) from exc
        return {"deleted": doc_id, "title": record.title, "passages": record.n_passages}


def _check_question(service: "Service", question: str) -> None:
    _check_text(lambda: validate_query(question, service.settings.max_question_chars))


def _check_text(check: Callable[[], T]) -> T:
    """Run a ``inputs.validate_*`` check at the edge and return the text it cleaned: its QueryError
    becomes a 422 before any queue or stream."""
    try:
        return check()
    except QueryError as exc:
        raise HTTPException(422, str(exc)) from exc


def _web_url(url: str) -> str:
    """An http(s) URL, or a 422 that names no file of the server (``ingest.fetch.require_web_url``)."""
    try:
        return require_web_url(url)
    except FetchError as exc:
        raise HTTPException(422, str(exc)) from exc


def _check_doc_ids(service: "Service", doc_ids: list[str] | None) -> None:
    """404 for a document id the library does not hold (instead of a silent "the sources don't say")."""
    try:
        service.library.require_documents(doc_ids)
    except UnknownDocumentError as exc:
        raise HTTPException(404, f"no document with id {exc.args[0]!r}; GET /api/documents lists the ids") from exc


def _persona(given: PersonaModel | None, default: personas.Persona) -> personas.Persona:
    """The requested side, or the default one; an empty stance is filled in by the chain."""
    return default if given is None else personas.Persona(given.name, given.stance)


def _start_spar(service: "Service", chain: SparChain, request: SparRequest) -> Debate:
    """A new saved session for ``request``, or the 422/404 that says why not (nothing is saved then)."""
    missing = [name for name in ("motion", "side") if getattr(request, name) is None]
    if missing:
        raise HTTPException(422, f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required to start "
                                 "a spar session (or give session_id to continue one)")  # fmt: skip
    assert request.motion is not None and request.side is not None  # else missing, just above, named it
    _check_question(service, request.motion)
    _check_doc_ids(service, request.doc_ids)
    try:
        return chain.start(request.motion, request.side, request.rounds, request.doc_ids)
    except (QueryError, DebateError) as exc:  # a bad side or rounds, a side with nothing to argue from
        raise HTTPException(422, str(exc)) from exc


def _check_turn(chain: SparChain, text: str, check=None) -> None:
    """``check`` (default: the turn's text alone), its SparError or QueryError a 422."""
    try:
        (check or (lambda: chain.check_turn_text(text)))()
    except (QueryError, DebateError) as exc:
        raise HTTPException(422, str(exc)) from exc


def _spar_session(service: "Service", session_id: int) -> Debate:
    try:
        return service.spar_chain.session(session_id)
    except KeyError as exc:
        raise HTTPException(404, f"no spar session with id {session_id}; GET /api/spar lists them") from exc


def _debate(service: "Service", debate_id: int) -> Debate:
    try:
        return service.transcripts.get(debate_id)
    except KeyError as exc:
        raise HTTPException(404, f"no debate with id {debate_id}") from exc


def safe_upload_name(filename: str | None) -> str:
    """A client's file name reduced to a plain base name: no folders (``/`` or ``\\``), no control or
    invisible formatting characters, no leading dots, at most ~150 characters; ``upload.txt`` if
    nothing is left. The suffix survives, because it decides which loader reads the file."""
    name = strip_terminal_escapes(filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().lstrip(".").strip()
    stem, suffix = os.path.splitext(name)
    name = stem[:120] + suffix[:16]
    return name if stem.strip() else "upload.txt"


def _save_upload(upload: StarletteUploadFile, folder: Path, index: int) -> tuple[str, str]:
    """Store an upload in its own sub-folder under a sanitised name (``../../etc/passwd`` or
    ``/abs/x.txt`` stay inside ``folder``, and two uploads called ``a.txt`` do not overwrite each other);
    returns (saved path, name): the document is recorded under the name, not the temporary path."""
    name = safe_upload_name(upload.filename)
    target = folder / str(index) / name
    target.parent.mkdir()
    with target.open("wb") as out:
        shutil.copyfileobj(upload.file, out)
    return str(target), name


_UPLOAD_FORM = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                                  "description": "Article files (each at most max_file_bytes)"},
                        "url": {"type": "string"}, "text": {"type": "string"}, "title": {"type": "string"},
                        "stance": {"type": "string", "enum": [*STANCES, *ALIASES],
                                   "description": "for or against the motion (stored as advocate or skeptic), or unknown; "
                                                  "default: the manifest's, else unknown"},
                    },
                }
            }
        }
    }
}  # fmt: skip


def _add_documents(
    service: "Service", files: list[StarletteUploadFile], url: str | None = None, text: str | None = None,
    title: str | None = None, stance: str | None = None,
) -> list[dict]:  # fmt: skip
    stance = validate_stance(stance) if stance and stance.strip() else None  # StanceError: 422
    with upload_folder() as folder:
        uploads = [_save_upload(upload, folder, i) for i, upload in enumerate(files)]
        items = [_web_url(url)] if url and url.strip() else []
        texts = [(text, title or None)] if text and text.strip() else []
        if not uploads and not items and not texts:
            raise HTTPException(422, "send files, a url or text")
        try:
            results = service.library.ingest(items, texts=texts, uploads=uploads, stance=stance)
        except DuplicateUploadError as exc:
            raise HTTPException(422, str(exc)) from exc
    # Queued behind the model's other jobs: the documents are stored, the upload returns now.
    service.suggest_stances_later(stored_document_ids(results))
    return [asdict(r) for r in results]


def validation_message(exc: RequestValidationError) -> str:
    """FastAPI's validator records as one sentence: where and what, e.g. ``body.k: Input should be
    greater than or equal to 1``. The input itself is left out (it may be megabytes, or a secret)."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ())) or "request"
        why = error.get("msg", "invalid")
        if error.get("type") == "json_invalid" and error.get("ctx", {}).get("error"):
            why = f"{why} ({error['ctx']['error']})"
        parts.append(f"{where}: {why}")
    shown = "; ".join(parts[:5]) or "invalid request"
    return shown + (f"; and {len(parts) - 5} more" if len(parts) > 5 else "")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The same {"detail": str} as every other error (ErrorMessage), not FastAPI's list of records.
        return JSONResponse({"detail": validation_message(exc)}, status_code=422)

    @app.exception_handler(UserError)
    async def _user_error(request: Request, exc: UserError) -> JSONResponse:
        # A bad query, stance or debate request, an unknown document, the Chroma server down (scale path):
        # its status, its message, Retry-After when waiting helps (``assistant.core.errors``).
        return user_error_response(exc)
