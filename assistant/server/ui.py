"""The web UI: Gradio tabs over the process's ``Service``, mounted by ``assistant.server.app`` beside the REST API.

Tabs: **Ask** (chat with streamed answers; [n] links open the cited passage; a sources
panel under each answer; follow-ups use the conversation), **Debate** (motion, rounds and
persona names, a judging criterion; turns stream with their speakers; the judge's ballot; Markdown
and Word downloads; the flow sheet; every saved card on the motion as one Word download), **Spar**
(the user argues one side, the assistant the other: each sentence of the user's turn is marked
supported / contradicted / not found as it is checked, then the assistant answers with evidence
cards; a scorecard, with the ballot at the end; the flow sheet; saved sessions resume), **Library**
(upload, URL, paste; progress while ingesting; documents with passage counts; delete; rebuild the
index) and **Search** (ranked passages).

Everything from articles or the model is escaped before it is shown (``assistant.present.render``).
The LLM is shared through ``Service.queue``: a request that has to wait says so. Bound to
127.0.0.1 unless told otherwise; with a token or UI password set, every page and call needs it
(``assistant.server.access``).
"""

from __future__ import annotations

import assistant  # noqa: F401  (sets the offline environment before gradio is imported)

import asyncio
import atexit
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from html import escape as escape_html
from pathlib import Path
from typing import TYPE_CHECKING, cast

import gradio as gr
import pydantic
from gradio.exceptions import ComponentProcessingError

from assistant.core import personas

from assistant.present import render
from assistant.core.cancel import GenerationStopped
from assistant.core.errors import UserError
from assistant.chains.debate import check_criterion, check_personas
from assistant.chains.debate_events import CardMade, ClaimMarked, DebateStarted, Scorecard, TurnFinished, TurnStarted, TurnText
from assistant.chains.ballot import DEFAULT_CRITERION
from assistant.present.docx_export import NoCardsError, motion_docx, motion_filename, to_docx
from assistant.chains.flow import flow_of
from assistant.storage.library import UnknownDocumentError
from assistant.chains.ask_events import Answer, QuoteFound, SentenceChecked, SourcesFound
from assistant.core.inputs import QueryError, validate_query, validate_text
from assistant.server.generation_queue import Queued
from assistant.chains.spar import rounds_of
from assistant.present.transcript_export import to_spar_markdown
from assistant.core.debate_record import Debate
from assistant.present.transcript_export import to_markdown
from ingest.fetch import FetchError, require_web_url
from ingest.pipeline import DuplicateUploadError, stored_document_ids
from assistant.core.sides import DIRECTIONS, FOR, SIDE_CHOICES, STANCE_CHOICES, StanceError, opponent, validate_side

if TYPE_CHECKING:  # annotations only: the tabs are given the process's service (``assistant.server.app``)
    from assistant.server.service import Service

# "set aside": the sentences that address the assistant, left out of every prompt (``ingest.injection``).
DOC_COLUMNS = ["id", "title", "author", "date", "passages", "source", "set aside", "stance"]
HIT_COLUMNS = ["rank", "score", "title", "passage", "source", "chars"]


def _documents_table(service: Service) -> list[list[str]]:
    return [[d.id, d.title, d.author or "", d.date or "", str(d.n_passages), d.source, d.set_aside_shown, d.stance_shown]
            for d in service.library.documents()]  # fmt: skip


def _results_text(results) -> str:
    lines = []
    for r in results:
        removed = ", ".join(f"{k} {v}" for k, v in sorted(r.removed.items()))
        lines.append(f"{r.status}: {r.title or r.item} - {r.message}" + (f" (removed: {removed})" if removed else ""))
    return "\n".join(lines) or "nothing to ingest"


def _queued_note(ahead: int) -> str:
    return f"Queued: {ahead} request{'s' if ahead != 1 else ''} ahead of yours for the model..."


# What a generation can end with that the user should read: a bad request, a full queue, a server
# shutting down, a generation stopped at its time budget.
_GENERATION_ERRORS = (UserError, GenerationStopped)


def _checked(check):
    """The result of a check made before any work (``inputs.validate_*``, a debate's or spar's
    request checks), its user error shown as the UI's error."""
    try:
        return check()
    except UserError as exc:
        raise gr.Error(str(exc)) from exc


def export_folder() -> Path:
    """A temporary folder for the app's Markdown downloads, removed when the process exits
    (one per app, not one per debate: the Debate tab used to leave a folder behind per debate)."""
    folder = Path(tempfile.mkdtemp(prefix="da-exports-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _require_documents(service: Service) -> None:
    """Refuse a generation over an empty library before it waits for the model."""
    if not service.library.documents():
        raise gr.Error("The library is empty: add articles in the Library tab first.")


# Handlers are closures made per service, not methods or partials: Gradio names each endpoint after
# its function (``/do_ask``, ``/do_debate``, ...), and clients call them by those names.

# --- Ask ----------------------------------------------------------------------------------
def _ask_handler(service: Service) -> Callable[..., AsyncIterator[tuple]]:
    """``do_ask`` over ``service``."""

    async def do_ask(question: str, chat: list[dict], history: list[list[str]]):
        """Stream the answer into the chat; the last yield replaces it with the checked HTML.

        An async generator reading a server-owned job: when the tab closes, Gradio closes this
        generator, and closing ``stream`` cancels the generation within one token."""
        question = _checked(lambda: validate_query(question, service.settings.max_question_chars))
        _require_documents(service)
        chat = list(chat or []) + [{"role": "user", "content": question}, {"role": "assistant", "content": "…"}]
        shown, sources, checked, scope = "", [], [], render.new_scope()
        stream = service.queue.stream(lambda: service.ask_chain.stream(  # Gradio's history: [question, answer] rows
            question, cast("list[tuple[str, str]]", [tuple(h) for h in history or []])
        ))
        try:
            async for item in stream:
                if isinstance(item, Queued):
                    chat[-1] = {"role": "assistant", "content": _queued_note(item.ahead)}
                    yield "", chat, history
                    continue
                if isinstance(item, Answer):
                    chat[-1] = {"role": "assistant", "content": render.answer_html(item)}
                    history = list(history or []) + [[question, item.text]]
                    yield "", chat, history
                    continue
                if isinstance(item, SourcesFound):
                    sources = item.passages
                elif isinstance(item, SentenceChecked):
                    checked.append(item.sentence)
                elif isinstance(item, QuoteFound):
                    shown += item.display
                else:
                    shown += item
                chat[-1] = {"role": "assistant", "content": render.live_answer_html(shown, scope, sources, checked)}
                yield "", chat, history
        except _GENERATION_ERRORS as exc:
            raise gr.Error(str(exc)) from exc
        finally:
            await stream.aclose()  # finished, failed or abandoned: the job is cancelled if still running

    return do_ask


def _ask_tab(service: Service) -> None:
    """The chat: a question (Enter or the button) streams its answer; the history feeds follow-ups."""
    do_ask = _ask_handler(service)
    with gr.Tab("Ask", id="ask"):
        chat = gr.Chatbot(label="Conversation", elem_id="chat", height=520, sanitize_html=True, render_markdown=False)
        history = gr.State([])
        with gr.Row():
            question = gr.Textbox(label="Question", placeholder="Ask about your articles", elem_id="question", scale=5)
            ask_button = gr.Button("Ask", variant="primary", elem_id="ask-button", scale=1)
        clear = gr.Button("Clear conversation", elem_id="clear")
        question.submit(do_ask, [question, chat, history], [question, chat, history], concurrency_limit=None)
        ask_button.click(do_ask, [question, chat, history], [question, chat, history], concurrency_limit=None)
        clear.click(lambda: ([], []), None, [chat, history])


# --- Debate -------------------------------------------------------------------------------
def _personas(adv_name: str, adv_stance: str, sk_name: str, sk_stance: str) -> tuple[personas.Persona, personas.Persona]:
    """The two sides as typed (blank names take the defaults; the chain fills in a blank stance),
    bad names refused before the request waits for the model."""
    return _checked(lambda: check_personas(personas.Persona(adv_name or personas.ADVOCATE.name, adv_stance or ""),
                                           personas.Persona(sk_name or personas.SKEPTIC.name, sk_stance or "")))  # fmt: skip


def _debate_handler(service: Service, exports: Path) -> Callable[..., AsyncIterator[tuple]]:
    """``do_debate`` over ``service``, writing each finished debate's Markdown and Word cards into ``exports``."""

    async def do_debate(motion: str, rounds: float, adv_name: str, adv_stance: str, sk_name: str, sk_stance: str,
                        criterion: str = ""):
        """Stream the turns into the transcript; a closed tab stops the debate (saved as "stopped")."""
        motion = _checked(lambda: validate_text(motion, service.settings.max_question_chars, "motion"))
        _require_documents(service)
        advocate, skeptic = _personas(adv_name, adv_stance, sk_name, sk_stance)
        criterion = _checked(lambda: check_criterion(criterion))
        scope = render.new_scope()
        turns, live_role, live_text, sources, speakers = [], None, "", [], {}
        stream = service.queue.stream(lambda: service.debate_chain.stream(motion, int(rounds), advocate, skeptic, None, criterion))
        try:
            async for event in stream:
                if isinstance(event, Queued):
                    yield _queued_note(event.ahead), gr.update(), gr.update(visible=False), gr.update(visible=False), ""
                    continue
                if isinstance(event, DebateStarted):
                    sources, speakers = event.debate.sources, event.debate.speakers()
                elif isinstance(event, TurnStarted):
                    live_role, live_text = event.role, ""
                elif isinstance(event, TurnText):
                    live_text += event.text
                elif isinstance(event, TurnFinished):
                    turns.append(event.turn)
                    live_role = None
                elif isinstance(event, Debate):
                    path = exports / f"debate-{event.id}.md"  # one file per debate, in the app's one folder
                    path.write_text(to_markdown(event), encoding="utf-8")
                    cards = exports / f"debate-{event.id}.docx"
                    cards.write_bytes(await asyncio.to_thread(to_docx, event))
                    html = render.debate_html(speakers, event.turns, event.sources, scope)
                    yield (f"Debate {event.id} saved.", html, gr.update(value=str(path), visible=True),
                           gr.update(value=str(cards), visible=True), _flow_html(event))  # fmt: skip
                    return
                live = (live_role, live_text) if live_role else None
                html = render.debate_html(speakers, turns, sources, scope, live)
                hidden = gr.update(visible=False)
                yield "Debating…", html, hidden, hidden, ""  # the downloads and the flow come with the finished debate
        except _GENERATION_ERRORS as exc:
            raise gr.Error(str(exc)) from exc
        finally:
            await stream.aclose()

    return do_debate


def _motion_cards_handler(service: Service, exports: Path) -> Callable[..., Awaitable[dict]]:
    """``do_motion_cards`` over ``service``, writing the Word file into ``exports``."""

    async def do_motion_cards(motion: str) -> dict:
        """Every card on the motion in the box, from all saved debates and spar sessions, as one Word
        download (in a folder of its own: two requests for the same motion never share a file)."""
        motion = _checked(lambda: validate_text(motion, service.settings.max_question_chars, "motion"))
        try:
            document = await asyncio.to_thread(lambda: motion_docx(motion, service.transcripts.on_motion(motion)))
        except NoCardsError as exc:
            raise gr.Error(str(exc)) from exc
        path = Path(tempfile.mkdtemp(prefix="cards-", dir=exports)) / motion_filename(motion)
        path.write_bytes(document)
        return gr.update(value=str(path), visible=True)

    return do_motion_cards


def _debate_tab(service: Service, exports: Path) -> None:
    """Motion, rounds and the two sides; the transcript streams, then the Markdown and Word downloads and the flow sheet appear."""
    do_debate = _debate_handler(service, exports)
    with gr.Tab("Debate", id="debate"):
        motion = gr.Textbox(label="Motion", placeholder="Should Washington offer a peace treaty before denuclearization?",
                            elem_id="motion")  # fmt: skip
        with gr.Row():
            rounds = gr.Slider(0, service.settings.debate_max_rounds, value=service.settings.debate_rounds, step=1,
                               label="Rebuttal rounds", elem_id="rounds")  # fmt: skip
            adv_name = gr.Textbox(label="First side", value=personas.ADVOCATE.name, elem_id="advocate-name")
            sk_name = gr.Textbox(label="Second side", value=personas.SKEPTIC.name, elem_id="skeptic-name")
        with gr.Accordion("Stances", open=False):
            adv_stance = gr.Textbox(label="First side argues", value=personas.ADVOCATE.stance, lines=2)
            sk_stance = gr.Textbox(label="Second side argues", value=personas.SKEPTIC.stance, lines=2)
        criterion = gr.Textbox(label="Judge by", placeholder=DEFAULT_CRITERION, elem_id="criterion",
                               info="What the judge's ballot weighs the clashes by; blank for the most direct evidence.")
        start = gr.Button("Start debate", variant="primary", elem_id="start-debate")
        debate_status = gr.Markdown(elem_id="debate-status")
        transcript = gr.HTML(elem_id="transcript")
        with gr.Row():
            download = gr.DownloadButton("Download transcript (Markdown)", visible=False, elem_id="download")
            download_docx = gr.DownloadButton("Download cards (Word)", visible=False, elem_id="download-docx")
            # Any saved debate's cards on the motion typed, with or without a debate run now.
            motion_cards = gr.Button("All cards on this motion (Word)", elem_id="motion-cards")
            download_motion = gr.DownloadButton("Download all cards on this motion (Word)", visible=False,
                                                elem_id="download-motion-cards")  # fmt: skip
        flow = gr.HTML(elem_id="debate-flow")
        start.click(do_debate, [motion, rounds, adv_name, adv_stance, sk_name, sk_stance, criterion],
                    [debate_status, transcript, download, download_docx, flow], concurrency_limit=None)  # fmt: skip
        # The last motion's file goes first, so a motion without cards never leaves another one's offered.
        hidden = motion_cards.click(lambda: gr.update(visible=False), None, download_motion, queue=False,
                                    api_visibility="private")  # fmt: skip
        hidden.then(_motion_cards_handler(service, exports), [motion], [download_motion])


# --- Spar ---------------------------------------------------------------------------------
_ROUND_TITLES = {"opening": "Your opening", "rebuttal": "Your rebuttal", "closing": "Your closing"}
SESSION_OVER = "Session over"


def _spar_choices(service: Service) -> list[tuple[str, int]]:
    """The saved spar sessions for the dropdown, newest first: (label, id)."""
    choices = []
    for session_id, motion, _, status, turns in service.transcripts.list(spar=True):
        motion = motion if len(motion) <= 70 else motion[:69] + "…"
        choices.append((f"#{session_id} {motion} ({status}, {turns} turn{'s' if turns != 1 else ''})", session_id))
    return choices


def _markdown_text(text: str) -> str:
    """``text`` (the user's motion) shown literally in a ``gr.Markdown``: every Markdown or HTML character escaped."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~&])", r"\\\1", " ".join(text.split()))


def _session_title(debate: Debate) -> str:
    return f"Session {debate.id}, “{_markdown_text(debate.motion)}”"


def _sessions_update(service: Service, selected: int | None = None):
    return gr.update(choices=_spar_choices(service), value=selected)


def _next_round_note(service: Service, debate: Debate) -> str:
    """Which round the user plays next ("Your opening", ..., "Session over")."""
    chain = service.spar_chain
    if chain.is_over(debate):
        return f"**{SESSION_OVER}.** Start a new session to spar again."
    unanswered = " (The assistant's answer to your last turn was not saved: that turn was stopped or failed. " \
        "It is answered before your next turn; an empty turn asks for just that answer.)" if chain.unanswered(debate) else ""
    kind = chain.next_round(debate)
    if kind is None:
        return f"**All your rounds are played.**{unanswered}"
    kinds = rounds_of(debate.rounds)
    note = f"**{_ROUND_TITLES.get(kind, kind)}** (round {chain.rounds_played(debate) + 1} of {len(kinds)}): you argue the {debate.user_side} side."
    return note + unanswered


def _spar_session(service: Service, session_id) -> Debate:
    """The saved session the tab holds, or the UI's error."""
    if session_id in (None, ""):
        raise gr.Error("Start a session (or pick a saved one to resume) first.")
    try:
        return service.spar_chain.session(int(session_id))
    except (KeyError, ValueError, TypeError, OverflowError) as exc:  # unknown, not a number, a list, 2**63
        raise gr.Error(f"There is no spar session {session_id}.") from exc


def _spar_files(service: Service, exports: Path, debate: Debate, card: Scorecard | None = None) -> tuple[str, Scorecard]:
    """The session's Markdown export (rewritten after every change) and the scorecard it holds."""
    card = card or service.spar_chain.scorecard(debate)
    path = exports / f"spar-{debate.id}.md"  # one file per session, in the app's one folder
    path.write_text(to_spar_markdown(debate, card), encoding="utf-8")
    return str(path), card


def _flow_html(debate: Debate) -> str:
    """The flow sheet shown under a finished debate and under a spar session after each turn."""
    return render.flow_html(flow_of(debate))


def _spar_start_handler(service: Service, exports: Path) -> Callable[..., tuple]:
    """``do_spar_start``: a new saved session (no model: both sides' passages are gathered now)."""

    def do_spar_start(motion: str, side: str, rounds: float):
        motion = _checked(lambda: validate_text(motion, service.settings.max_question_chars, what="motion"))
        _require_documents(service)
        try:
            side = validate_side(side)
        except StanceError as exc:
            raise gr.Error("Choose your side: for or against the motion.") from exc
        debate = _checked(lambda: service.spar_chain.start(motion, side, int(rounds)))
        path, _ = _spar_files(service, exports, debate)
        speakers = debate.speakers()
        status = (f"{_session_title(debate)} started: you argue {DIRECTIONS[side]} the motion, the assistant "
                  f"({speakers[opponent(side)]}) {DIRECTIONS[opponent(side)]} it.")  # fmt: skip
        assert debate.user_side is not None  # start() saves the session with the side given
        html = render.spar_html(speakers, debate.user_side, debate.turns, debate.sources, render.new_scope())
        return (debate.id, status, _next_round_note(service, debate), html, "",
                gr.update(value=path, visible=True), _sessions_update(service, debate.id),
                _flow_html(debate))  # fmt: skip

    return do_spar_start


def _spar_resume_handler(service: Service, exports: Path) -> Callable[..., tuple]:
    """``do_spar_resume``: load a saved session (after a restart too) where the user left it."""

    def do_spar_resume(session_id):
        debate = _spar_session(service, session_id)
        path, card = _spar_files(service, exports, debate)
        html = render.spar_html(debate.speakers(), debate.user_side, debate.turns, debate.sources, render.new_scope())
        status = f"{_session_title(debate)} resumed ({debate.status}): you argue the {debate.user_side} side."
        return (debate.id, status, _next_round_note(service, debate), html, render.scorecard_html(card),
                gr.update(value=path, visible=True), debate.motion, debate.user_side, debate.rounds,
                _flow_html(debate))  # fmt: skip

    return do_spar_resume


def _spar_scorecard_handler(service: Service) -> Callable[..., str]:
    """``do_spar_scorecard``: the scorecard of the session so far (no model)."""

    def do_spar_scorecard(session_id):
        return render.scorecard_html(service.spar_chain.scorecard(_spar_session(service, session_id)))

    return do_spar_scorecard


def _spar_progress_note(live: render.SparLive | None, user: str, speakers: dict[str, str]) -> str:
    """What a spar turn is doing now, for the status line."""
    if live is not None and live.checking:
        return "The local model is checking the marks the rules gave…"
    if live is None or live.role == user:
        return "Checking your sentences against the library…"
    return f"The {speakers.get(live.role, live.role)} is answering…"


def _spar_saved_view(service: Service, saved: Debate, scope: str, status: str, box: dict | str, score: object,
                     download: object) -> tuple:  # fmt: skip
    """The spar tab's outputs for a session as saved: after its turn, or after a failure that came
    once the user's turn was saved."""
    assert saved.user_side is not None  # a spar session
    html = render.spar_html(saved.speakers(), saved.user_side, saved.turns, saved.sources, scope)
    return (status, _next_round_note(service, saved), html, box, score, download, _sessions_update(service, saved.id),
            _flow_html(saved))  # fmt: skip


def _spar_turn_handler(service: Service, exports: Path) -> Callable[..., AsyncIterator[tuple]]:
    """``do_spar_turn`` over ``service``: play the user's turn through the model queue."""

    async def do_spar_turn(session_id, text: str, shown_scorecard: str = ""):
        """Stream the marks of the user's sentences as each is checked, then the assistant's cards.

        Everything is checked before the request waits for the model; a refused turn stays in its
        box. The box empties once the turn is saved (it is in the transcript from then on)."""
        debate, chain = _spar_session(service, session_id), service.spar_chain
        _checked(lambda: chain.check_play(debate.id, text))
        scope, speakers, user = render.new_scope(), debate.speakers(), debate.user_side
        assert user is not None  # a spar session (SparChain.session refuses a debate without user_side)
        box: dict | str  # gr.update() (the box left as it is) until the user's turn is saved, then "" (emptied)
        turns, sources, live, box, card = list(debate.turns), debate.sources, None, gr.update(), None
        flow = _flow_html(debate)  # redrawn when a turn is saved
        stream = service.queue.stream(lambda: chain.play(debate.id, text))
        try:
            async for event in stream:
                if isinstance(event, Queued):
                    yield (_queued_note(event.ahead), gr.update(), gr.update(), box, gr.update(), gr.update(),
                           gr.update(), gr.update())  # fmt: skip
                    continue
                if isinstance(event, DebateStarted):
                    sources = event.debate.sources  # grows as claim checks cite new passages
                elif isinstance(event, TurnStarted):
                    live = render.SparLive(event.role, event.kind)
                elif isinstance(event, ClaimMarked) and live is not None:  # the rules' mark, then the final one
                    live.mark(event.claim, event.final)
                elif isinstance(event, CardMade) and live is not None:
                    live.cards.append(event.card)
                elif isinstance(event, TurnText) and live is not None and not live.cards:
                    live.text += event.text  # a turn without cards (nothing to quote); card lines are shown as cards
                elif isinstance(event, TurnFinished):
                    turns.append(event.turn)
                    live = None
                    flow = _flow_html(replace(debate, turns=turns))
                    if event.turn.role == user:
                        box = ""  # saved: the turn is in the transcript now
                elif isinstance(event, Scorecard):
                    card = event
                elif isinstance(event, Debate):
                    path, card = await asyncio.to_thread(_spar_files, service, exports, event, card)
                    over = chain.is_over(event)
                    score = render.scorecard_html(card) if over or shown_scorecard else gr.update()
                    status = f"{_session_title(event)}: {'finished' if over else 'your turn is answered and saved'}."
                    yield _spar_saved_view(service, event, scope, status, box, score, gr.update(value=path, visible=True))
                    return
                html = render.spar_html(speakers, user, turns, sources, scope, live)
                note = _spar_progress_note(live, user, speakers)
                yield note, gr.update(), html, box, gr.update(), gr.update(), gr.update(), flow
        except _GENERATION_ERRORS as exc:
            if box == "":  # the user's turn was saved before the failure: show the session as it was saved
                saved = chain.session(debate.id)
                status = f"{_session_title(saved)} ({saved.status}): {_markdown_text(str(exc))}"
                yield _spar_saved_view(service, saved, scope, status, box, gr.update(), gr.update())
            raise gr.Error(str(exc)) from exc
        finally:
            await stream.aclose()

    return do_spar_turn


def _spar_tab(service: Service, exports: Path, demo: gr.Blocks) -> None:
    """Motion, side and rounds (or a saved session); the user's turns and the assistant's answers
    stream into the transcript; a scorecard on request; the flow sheet after each saved turn; the
    session as Markdown."""
    limit = service.settings.spar_max_words
    do_start, do_resume = _spar_start_handler(service, exports), _spar_resume_handler(service, exports)
    do_turn, do_scorecard = _spar_turn_handler(service, exports), _spar_scorecard_handler(service)

    def do_spar_sessions():
        return gr.update(choices=_spar_choices(service))

    with gr.Tab("Spar", id="spar"):
        gr.Markdown("Argue one side of a motion yourself; the assistant argues the other. Each sentence you write "
                    "is checked against the library (supported, contradicted or not found) before the assistant "
                    "answers with evidence cards, weakest claim first.")  # fmt: skip
        with gr.Row():
            motion = gr.Textbox(label="Motion", placeholder="Should Seoul revive the Sunshine Policy?", elem_id="spar-motion",
                                scale=3)  # fmt: skip
            side = gr.Radio(SIDE_CHOICES, value=FOR, label="Your side", elem_id="spar-side",
                            info="The assistant argues the other side.")  # fmt: skip
            rounds = gr.Slider(0, service.settings.debate_max_rounds, value=service.settings.spar_rounds, step=1,
                               label="Rebuttal rounds", info="between your opening and your closing",
                               elem_id="spar-rounds")  # fmt: skip
        with gr.Row():
            start = gr.Button("Start session", variant="primary", elem_id="spar-start")
            # Custom values: the choices are this page's (refreshed on load), the session id is checked when picked.
            sessions = gr.Dropdown(choices=_spar_choices(service), value=None, label="Or resume a saved session",
                                   allow_custom_value=True, elem_id="spar-sessions", scale=3)  # fmt: skip
            refresh = gr.Button("Refresh list", elem_id="spar-refresh")
        spar_status = gr.Markdown(elem_id="spar-status")
        next_round = gr.Markdown("Start a session to play your opening.", elem_id="spar-next")
        transcript = gr.HTML(elem_id="spar-transcript")
        turn = gr.Textbox(label="Your turn", lines=4, elem_id="spar-turn",
                          info=f"Free text, at most {limit} words; each sentence is checked against the library.")  # fmt: skip
        words = gr.Markdown(f"0 / {limit} words", elem_id="spar-words")
        with gr.Row():
            send = gr.Button("Send turn", variant="primary", elem_id="spar-send")
            score = gr.Button("Scorecard", elem_id="spar-score")
            download = gr.DownloadButton("Export Markdown", visible=False, elem_id="spar-download")
        scorecard = gr.HTML(elem_id="spar-scorecard")
        flow = gr.HTML(elem_id="spar-flow")
        session_id = gr.State(None)

        count_words = ("(text) => { const n = (text || '').trim().split(/\\s+/).filter(Boolean).length; "
                       f"return n + ' / {limit} words' + (n > {limit} ? ' (over the limit)' : ''); }}")  # fmt: skip
        turn.change(None, turn, words, js=count_words)
        shown = [spar_status, next_round, transcript]
        start.click(do_start, [motion, side, rounds], [session_id, *shown, scorecard, download, sessions, flow])
        sessions.input(do_resume, [sessions], [session_id, *shown, scorecard, download, motion, side, rounds, flow])
        refresh.click(do_spar_sessions, None, sessions)
        send.click(do_turn, [session_id, turn, scorecard], [*shown, turn, scorecard, download, sessions, flow],
                   concurrency_limit=None)  # fmt: skip
        score.click(do_scorecard, [session_id], [scorecard])
        demo.load(do_spar_sessions, None, sessions)


# --- Library ------------------------------------------------------------------------------
def _ingest_inputs(files, url: str, text: str, title: str) -> tuple[list[tuple[str, str]], list[str], list[tuple]]:
    """(uploads, URLs, pasted texts) from the form; a URL must be a web address, never a server path."""
    paths = [f if isinstance(f, str) else f.name for f in (files or [])]
    uploads = [(path, Path(path).name) for path in paths]  # recorded as upload:<name>, not the cache path
    items = []
    if url and url.strip():
        try:
            items.append(require_web_url(url))  # never a path on the server
        except FetchError as exc:
            raise gr.Error(str(exc)) from exc
    texts = [(text, title.strip() or None)] if text and text.strip() else []
    if not uploads and not items and not texts:
        raise gr.Error("Choose files, enter a URL or paste text first.")
    return uploads, items, texts


SUGGESTION_QUEUED_NOTE = ("The model will suggest a stance for the new documents when its turn comes; "
                          "press 'Refresh list' to see it.")


def _ingest_handler(service: Service) -> Callable[..., tuple]:
    """``do_ingest`` over ``service``: add what the form holds, with a progress bar in passages."""
    library = service.library

    def do_ingest(files, url: str, text: str, title: str, stance: str = "unknown", progress=gr.Progress()):
        uploads, items, texts = _ingest_inputs(files, url, text, title)
        progress(0, desc="reading")

        def report(done: int, total: int, doc_title: str) -> None:
            progress((done, total), desc=f"embedding {doc_title}", unit="passages")

        try:
            results = library.ingest(items, texts=texts, uploads=uploads, progress=report,
                                     stance=None if stance == "unknown" else stance)  # fmt: skip
        except DuplicateUploadError as exc:
            raise gr.Error(str(exc)) from exc
        queued = service.suggest_stances_later(stored_document_ids(results))
        note = f"\n{SUGGESTION_QUEUED_NOTE}" if queued else ""
        return _results_text(results) + note, _documents_table(service), None, "", "", ""

    return do_ingest


def _document_handlers(service: Service) -> tuple[Callable[..., tuple], Callable[..., tuple], Callable[..., tuple]]:
    """``do_set_stance``, ``do_delete`` and ``do_reindex`` over ``service``: each returns the new table."""
    library = service.library

    def do_set_stance(doc_id: str, stance: str):
        record = _checked(lambda: library.set_stance((doc_id or "").strip(), stance))  # unknown id, or not a stance
        return f"{record.title}: stance {record.stance_shown}", _documents_table(service)

    def do_delete(doc_id: str):
        try:
            record = library.delete((doc_id or "").strip())
        except UnknownDocumentError as exc:
            raise gr.Error(str(exc)) from exc
        return f"deleted {record.title}", _documents_table(service), ""

    def do_reindex(progress=gr.Progress()):
        n = library.reindex(progress=lambda done, total, t: progress((done, total), desc=f"reindexing {t}"))
        return f"reindexed {n} passages", _documents_table(service)

    return do_set_stance, do_delete, do_reindex


def _library_tab(service: Service, demo: gr.Blocks) -> None:
    """Add (upload, URL, paste), list, re-stance, delete and reindex documents; the list refreshes on load."""
    do_ingest = _ingest_handler(service)
    do_set_stance, do_delete, do_reindex = _document_handlers(service)
    with gr.Tab("Library", id="library"):
        with gr.Row():
            files = gr.File(label="Upload articles (.txt .md .html .pdf)", file_count="multiple", elem_id="upload")
            with gr.Column():
                url = gr.Textbox(label="Add a URL", placeholder="https://...")
                title = gr.Textbox(label="Title for pasted text")
                text = gr.Textbox(label="Or paste an article", lines=6)
                stance = gr.Dropdown(STANCE_CHOICES, value="unknown", label="Stance (which side of the motion these articles argue)",
                                     elem_id="stance")  # fmt: skip
        add = gr.Button("Add to library", variant="primary", elem_id="add")
        status = gr.Textbox(label="Result", interactive=False, lines=3, elem_id="ingest-status")
        docs = gr.Dataframe(value=_documents_table(service), headers=DOC_COLUMNS, interactive=False, wrap=True,
                            elem_id="documents")  # fmt: skip
        with gr.Row():
            delete_id = gr.Textbox(label="Document id to delete", elem_id="delete-id")
            delete = gr.Button("Delete", variant="stop", elem_id="delete")
            rebuild = gr.Button("Rebuild index")
            refresh_docs = gr.Button("Refresh list", elem_id="documents-refresh")  # suggested stances come later
        with gr.Row():
            stance_id = gr.Textbox(label="Document id", elem_id="stance-id")
            new_stance = gr.Dropdown(STANCE_CHOICES, value=FOR, label="Set its stance (no re-embedding)")
            set_stance = gr.Button("Set stance", elem_id="set-stance")
        add.click(do_ingest, [files, url, text, title, stance], [status, docs, files, url, text, title])
        set_stance.click(do_set_stance, [stance_id, new_stance], [status, docs])
        delete.click(do_delete, [delete_id], [status, docs, delete_id])
        rebuild.click(do_reindex, [], [status, docs])
        refresh_docs.click(lambda: _documents_table(service), None, docs)
        demo.load(lambda: _documents_table(service), None, docs)


# --- Search -------------------------------------------------------------------------------
def _search_handler(service: Service) -> Callable[..., tuple]:
    """``do_search`` over ``service``: ranked passages, retrieval only (no model, no queue)."""

    def do_search(query: str, k: float):
        # Gradio checked k against the slider's range; a missing query is an empty one (refused as such).
        try:
            hits = service.retriever.retrieve(query or "", int(k))
        except QueryError as exc:
            raise gr.Error(str(exc)) from exc
        rows = [[i, f"{h.score:.4f}", h.title, h.text, h.source, f"{h.start}-{h.end}"] for i, h in enumerate(hits, 1)]
        return rows, ("" if rows else "No matching passages. Add articles in the Library tab.")

    return do_search


def _search_tab(service: Service) -> None:
    """A query (Enter or the button) and how many passages; the ranked passages in a table."""
    do_search = _search_handler(service)
    with gr.Tab("Search", id="search"):
        query = gr.Textbox(label="Search the library", placeholder="e.g. security assurances", elem_id="search-box")
        k = gr.Slider(1, 20, value=service.settings.retrieval_k, step=1, label="passages")
        note = gr.Markdown()
        hits = gr.Dataframe(headers=HIT_COLUMNS, interactive=False, wrap=True, elem_id="search-results")
        query.submit(do_search, [query, k], [hits, note])
        gr.Button("Search").click(do_search, [query, k], [hits, note])


class _Blocks(gr.Blocks):
    """``gr.Blocks`` whose callers' mistakes are their errors, never a 500 or a traceback in the log.

    Gradio's API takes any JSON for an endpoint's inputs: too few values, or values a component cannot
    read (``null`` for a slider, a string for a chat history), make Gradio raise plain exceptions and
    print their tracebacks, as it also does for every ``gr.Error`` a handler raises for bad input. Here
    both are the caller's ``gr.Error``, printed nowhere; a real bug in a handler still prints its traceback.
    """

    def validate_inputs(self, block_fn, inputs: list) -> None:
        if len(inputs) < len(block_fn.inputs):  # Gradio's own check raises ValueError with object reprs
            raise gr.Error(f"{block_fn.name} takes {_describe_inputs(block_fn)}; got {len(inputs)} value"
                           f"{'' if len(inputs) == 1 else 's'}", print_exception=False)  # fmt: skip
        super().validate_inputs(block_fn, inputs)

    async def preprocess_data(self, block_fn, inputs: list, state, explicit_call: bool = False):
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except gr.Error:
            raise
        except (ComponentProcessingError, pydantic.ValidationError) as exc:
            raise gr.Error(f"{block_fn.name} got an input of the wrong type; it takes {_describe_inputs(block_fn)}",
                           print_exception=False) from exc  # fmt: skip

    async def process_api(self, *args, **kwargs):
        try:
            return await super().process_api(*args, **kwargs)
        except gr.Error as exc:  # a message for the user (refused input, full queue...), not a bug
            exc.print_exception = False
            # Gradio renders an error's message as HTML, and ours are plain text that may echo what was
            # typed ("There is no spar session <img ...>"): shown as text, never as markup.
            exc.message = escape_html(str(exc.message), quote=False)
            raise


def _describe_inputs(block_fn) -> str:
    """The values an API caller sends (the tab's own state is not one of them), e.g.
    ``2 values: "Search the library" (textbox), "passages" (slider)``."""
    sent = [block for block in block_fn.inputs if not block.stateful]
    names = [f'"{getattr(block, "label", None) or type(block).__name__}" ({block.get_block_name()})' for block in sent]
    return f"{len(sent)} value{'' if len(sent) == 1 else 's'}: {', '.join(names)}"


def build_blocks(service: Service) -> gr.Blocks:
    """The UI: one tab per job, each built and wired by its own function over ``service``."""
    exports = export_folder()
    with _Blocks(title="Debate Assistant") as demo:
        gr.Markdown("# Debate Assistant\nGrounded answers and debates over the articles you add. Every claim cites a passage.")
        _ask_tab(service)
        _debate_tab(service, exports)
        _spar_tab(service, exports, demo)
        _library_tab(service, demo)
        _search_tab(service)
    return demo
