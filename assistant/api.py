"""REST API under ``/api``: health, ask, debate (streamed), documents, saved debates.

Streams are NDJSON (one JSON object a line, ``type`` says which): a ``queued`` line while
the request waits for the model, ``token`` lines as text is generated, then the result.
With ``api_token`` set, every call but ``/api/health`` needs ``Authorization: Bearer <token>``.
OpenAPI docs are served at ``/api/docs``. (No ``from __future__ import annotations`` here: FastAPI
reads the annotations of the nested endpoint functions at run time.)
"""


import json
import os
import secrets
import shutil
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, Field

from assistant import prompts
from assistant.debate import CardMade, DebateError, DebateStarted, TurnFinished, TurnStarted, TurnText
from assistant.library import UnknownDocumentError
from assistant.qa import Answer
from assistant.retrieval import QueryError
from assistant.service import Queued, Service
from assistant.store import StoreUnavailableError
from assistant.streaming import final_item
from assistant.transcripts import Debate, to_brief, to_json, to_markdown
from ingest.registry import StanceError, validate_stance

# Conversation history without terminal escape sequences, control characters or chat-template
# tokens (see prompts.clean_user_text). Questions, queries, motions and personas need no such
# field: validate_query and the debate's persona check clean them for every surface alike.
CleanText = Annotated[str, AfterValidator(lambda value: prompts.clean_user_text(value))]


class AskRequest(BaseModel):
    question: str = Field(description="The question (follow-ups are read in the light of history).")
    history: list[tuple[CleanText, CleanText]] = Field(
        default_factory=list, description="Earlier (question, answer) pairs."
    )
    k: int | None = Field(None, ge=1, le=50, description="Passages to show the model.")
    doc_ids: list[str] | None = Field(None, description="Only these documents.")
    stream: bool = Field(False, description="NDJSON stream of queued/token/answer lines instead of one JSON answer.")


class SearchRequest(BaseModel):
    query: str = Field(description="What to look for.")
    k: int | None = Field(None, ge=1, le=50, description="How many passages (default from settings).")
    doc_ids: list[str] | None = Field(None, description="Only these documents.")
    mode: Literal["hybrid", "dense", "bm25"] | None = Field(None, description="Retriever (default from settings).")


class PersonaModel(BaseModel):
    name: str
    stance: str = ""


class DocumentChange(BaseModel):
    stance: str = Field(description="advocate, skeptic or unknown")


class DebateRequest(BaseModel):
    motion: str
    rounds: int | None = Field(None, ge=0, description="Rebuttal rounds (default from settings).")
    advocate: PersonaModel | None = None
    skeptic: PersonaModel | None = None
    doc_ids: list[str] | None = None


def passage_dict(number: int, passage) -> dict:
    return {
        "number": number, "passage_id": passage.id if hasattr(passage, "id") else passage.passage_id,
        "doc_id": passage.doc_id, "title": passage.title, "author": passage.author, "source": passage.source,
        "start": passage.start, "end": passage.end, "text": passage.text,
    }  # fmt: skip


def answer_dict(answer: Answer) -> dict:
    return {
        "question": answer.question,
        "standalone_question": answer.standalone_question,
        "answer": answer.text,
        "declined": answer.declined,
        "withheld": answer.withheld,
        "citations": [passage_dict(c.number, c.passage) for c in answer.citations],
        "invalid_citations": answer.invalid_citations,
        "corrected_citations": answer.corrected_citations,
        "uncited_sentences": answer.uncited_sentences,
        "unsupported_sentences": answer.unsupported_sentences,
        "timing": answer.timing.as_dict(),
    }


def debate_dict(debate: Debate) -> dict:
    return {
        "id": debate.id, "motion": debate.motion, "created_at": debate.created_at, "status": debate.status,
        "rounds": debate.rounds, "advocate": asdict(debate.advocate), "skeptic": asdict(debate.skeptic),
        "sources": [asdict(s) for s in debate.sources], "turns": [asdict(t) for t in debate.turns],
    }  # fmt: skip


def _ndjson(events: Iterator[dict]) -> StreamingResponse:
    return StreamingResponse((json.dumps(e) + "\n" for e in events), media_type="application/x-ndjson")


def build_router(service: Service) -> APIRouter:
    bearer = HTTPBearer(auto_error=False)

    def require_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        token = service.settings.api_token
        if token is None:
            return
        given = credentials.credentials if credentials else ""
        if not secrets.compare_digest(given.encode(), token.get_secret_value().encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    router = APIRouter(prefix="/api")
    protected = APIRouter(dependencies=[Depends(require_token)])

    @router.get("/health", summary="Liveness, library size and the model queue")
    def health() -> dict:
        return {
            "status": "ok",
            "documents": len(service.library.documents()),
            "llm_backend": service.settings.llm_backend,
            "queue": {"running": service.queue.running, "waiting": service.queue.waiting},
        }

    @protected.post("/ask", summary="Answer a question with validated citations")
    def ask(request: AskRequest):
        def events() -> Iterator[dict]:
            stream = service.queue.run(
                lambda: service.ask_chain.stream(request.question, request.history, k=request.k, doc_ids=request.doc_ids)
            )
            for item in stream:
                if isinstance(item, Queued):
                    yield {"type": "queued", "ahead": item.ahead}
                elif isinstance(item, Answer):
                    yield {"type": "answer", **answer_dict(item)}
                else:
                    yield {"type": "token", "text": item}

        # Refuse bad questions (422) and unknown documents (404) before any streaming starts.
        _check_question(service, request.question)
        _check_doc_ids(service, request.doc_ids)
        if request.stream:
            return _ndjson(events())
        answer = final_item((e for e in events() if e["type"] == "answer"), dict)
        return {k: v for k, v in answer.items() if k != "type"}

    @protected.post("/debate", summary="Stage a debate; streamed as NDJSON")
    def debate(request: DebateRequest):
        advocate = _persona(request.advocate, prompts.ADVOCATE)
        skeptic = _persona(request.skeptic, prompts.SKEPTIC)
        _check_question(service, request.motion)
        _check_doc_ids(service, request.doc_ids)
        if request.rounds is not None and request.rounds > service.settings.debate_max_rounds:
            raise HTTPException(422, f"rounds must be at most {service.settings.debate_max_rounds}")

        def events() -> Iterator[dict]:
            stream = service.queue.run(
                lambda: service.debate_chain.stream(request.motion, request.rounds, advocate, skeptic, request.doc_ids)
            )
            try:
                for event in stream:
                    if isinstance(event, Queued):
                        yield {"type": "queued", "ahead": event.ahead}
                    elif isinstance(event, DebateStarted):
                        yield {"type": "start", "id": event.debate.id, "sources": [asdict(s) for s in event.debate.sources]}
                    elif isinstance(event, TurnStarted):
                        yield {"type": "turn_start", **asdict(event)}
                    elif isinstance(event, CardMade):
                        yield {"type": "card", "index": event.index, **asdict(event.card)}
                    elif isinstance(event, TurnText):
                        yield {"type": "token", "index": event.index, "text": event.text}
                    elif isinstance(event, TurnFinished):
                        yield {"type": "turn", **asdict(event.turn)}
                    elif isinstance(event, Debate):
                        yield {"type": "debate", **debate_dict(event)}
            except (DebateError, QueryError) as exc:
                yield {"type": "error", "detail": str(exc)}

        return _ndjson(events())

    @protected.post("/search", summary="Top-k passages for a query: retrieval only, no model, no queue")
    def search(request: SearchRequest) -> list[dict]:
        _check_question(service, request.query)
        _check_doc_ids(service, request.doc_ids)
        hits = service.retriever.retrieve(request.query, request.k, doc_ids=request.doc_ids, mode=request.mode)
        return [
            {**passage_dict(rank, hit), "score": hit.score, "dense_similarity": hit.dense_similarity,
             "lexical_score": hit.lexical_score}
            for rank, hit in enumerate(hits, start=1)
        ]  # fmt: skip

    @protected.get("/debates", summary="Saved debates, newest first")
    def debates() -> list[dict]:
        return [
            {"id": i, "motion": m, "created_at": c, "status": s, "turns": n} for i, m, c, s, n in service.transcripts.list()
        ]

    @protected.get("/debates/{debate_id}", summary="One saved debate")
    def get_debate(debate_id: int) -> dict:
        return debate_dict(_debate(service, debate_id))

    @protected.get("/debates/{debate_id}/markdown", summary="A saved debate as Markdown", response_class=PlainTextResponse)
    def debate_markdown(debate_id: int) -> str:
        return to_markdown(_debate(service, debate_id))

    @protected.get("/debates/{debate_id}/brief", summary="Every card of a saved debate, grouped by side (Markdown)",
                   response_class=PlainTextResponse)  # fmt: skip
    def debate_brief(debate_id: int) -> str:
        return to_brief(_debate(service, debate_id))

    @protected.get("/debates/{debate_id}/cards", summary="Per turn and card: tag, quote, passage, document and its stance")
    def debate_cards(debate_id: int) -> dict:
        return to_json(_debate(service, debate_id))

    @protected.get("/documents", summary="Documents in the library")
    def documents() -> list[dict]:
        return [asdict(d) for d in service.library.documents()]

    @protected.post("/documents", summary="Add files, a URL and/or pasted text")
    def add_documents(
        files: Annotated[list[UploadFile] | None, File(description="Article files")] = None,
        url: Annotated[str | None, Form()] = None,
        text: Annotated[str | None, Form()] = None,
        title: Annotated[str | None, Form()] = None,
        stance: Annotated[str | None, Form(description="advocate, skeptic or unknown (default: manifest, else unknown)")] = None,
    ) -> list[dict]:
        stance = validate_stance(stance) if stance else None
        with tempfile.TemporaryDirectory(prefix="da-upload-") as folder:
            items = [_save_upload(upload, Path(folder), i) for i, upload in enumerate(files or [])]
            if url and url.strip():
                items.append(url.strip())
            texts = [(text, title or None)] if text and text.strip() else []
            if not items and not texts:
                raise HTTPException(422, "send files, a url or text")
            results = service.library.ingest(items, texts=texts, stance=stance)
        service.library.suggest_stances([r.doc_id for r in results if r.status in ("added", "replaced") and r.doc_id])
        return [asdict(r) for r in results]

    @protected.patch("/documents/{doc_id}", summary="Change a document's stance (nothing is re-embedded)")
    def update_document(doc_id: str, change: DocumentChange) -> dict:
        try:
            return asdict(service.library.set_stance(doc_id, change.stance))
        except UnknownDocumentError as exc:
            raise HTTPException(404, str(exc)) from exc

    @protected.delete("/documents/{doc_id}", summary="Delete a document and its passages")
    def delete_document(doc_id: str) -> dict:
        try:
            record = service.library.delete(doc_id)
        except UnknownDocumentError as exc:
            raise HTTPException(404, str(exc)) from exc
        return {"deleted": doc_id, "title": record.title, "passages": record.n_passages}

    router.include_router(protected)
    return router


def _check_question(service: Service, question: str) -> None:
    from assistant.retrieval import validate_query

    try:
        validate_query(question, service.settings.max_question_chars)
    except QueryError as exc:
        raise HTTPException(422, str(exc)) from exc


def _check_doc_ids(service: Service, doc_ids: list[str] | None) -> None:
    """404 for a document id the library does not hold (instead of a silent "the sources don't say")."""
    try:
        service.library.require_documents(doc_ids)
    except UnknownDocumentError as exc:
        raise HTTPException(404, f"no document with id {exc.args[0]!r}; GET /api/documents lists the ids") from exc


def _persona(given: PersonaModel | None, default: prompts.Persona) -> prompts.Persona:
    """The requested side, or the default one; an empty stance is filled in by the chain."""
    return default if given is None else prompts.Persona(given.name, given.stance)


def _debate(service: Service, debate_id: int) -> Debate:
    try:
        return service.transcripts.get(debate_id)
    except KeyError as exc:
        raise HTTPException(404, f"no debate with id {debate_id}") from exc


def safe_upload_name(filename: str | None) -> str:
    """A client's file name reduced to a plain base name: no folders (``/`` or ``\\``), no control or
    invisible formatting characters, no leading dots, at most ~150 characters; ``upload.txt`` if
    nothing is left. The suffix survives, because it decides which loader reads the file."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().lstrip(".").strip()
    stem, suffix = os.path.splitext(name)
    name = stem[:120] + suffix[:16]
    return name if stem.strip() else "upload.txt"


def _save_upload(upload: UploadFile, folder: Path, index: int) -> str:
    """Store an upload in its own sub-folder under a sanitised name (``../../etc/passwd`` or
    ``/abs/x.txt`` stay inside ``folder``, and two uploads called ``a.txt`` do not overwrite each other)."""
    target = folder / str(index) / safe_upload_name(upload.filename)
    target.parent.mkdir()
    with target.open("wb") as out:
        shutil.copyfileobj(upload.file, out)
    return str(target)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(QueryError)
    async def _query_error(request: Request, exc: QueryError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(StanceError)
    async def _stance_error(request: Request, exc: StanceError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(DebateError)
    async def _debate_error(request: Request, exc: DebateError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(StoreUnavailableError)
    async def _store_unavailable(request: Request, exc: StoreUnavailableError) -> JSONResponse:
        # The Chroma server is down (scale path): a temporary condition, not a bug in the request.
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "10"})
