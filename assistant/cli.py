"""Command line: ``da ingest | documents | delete | search | ask | debate | debates | export | cards | spar | reindex | repair | app``.

Every command reads the same Settings (env vars ``DA_*`` and the optional TOML file).
Errors a user can fix (unknown id, empty question, model mismatch, a bad number or output path)
are printed as one plain sentence with a non-zero exit code, never as a traceback.

Both consoles print text as it is, never as Rich markup: a title such as ``Notes [/]`` (stored by
any API client) or an id typed as ``x[bold]`` is data, and read as markup it crashed every listing
(issue 32). Styles come only from ``_styled`` parts and Table styles, so a new print cannot reopen
the hole by forgetting an ``escape()``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, Optional, cast

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from assistant.present import render
from assistant.core.errors import UserError
from assistant.core.limits import MAX_ID, MAX_K, MIN_ID, MIN_K
from assistant.core.settings import Settings

if TYPE_CHECKING:  # annotations only: each command imports what it runs, so `da --help` stays fast
    from assistant.storage.transcripts import TranscriptStore

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Debate Assistant: grounded answers over your articles.")
# markup and emoji codes off: every dynamic value is printed as typed (see the module docstring).
out = Console(markup=False, emoji=False, highlight=False)
err = Console(stderr=True, markup=False, emoji=False, highlight=False)


def _styled(*parts: str | tuple[str, str]) -> Text:
    """One line from plain strings and ``(text, style)`` pairs; no part is ever read as markup."""
    return Text.assemble(*parts)


def _error(message: str) -> None:
    err.print(_styled(("error:", "bold red"), f" {message}"))


def _library():
    from assistant.storage.library import Library

    return Library(Settings())


def _fail(message: str, code: int = 2) -> NoReturn:
    _error(message)
    raise typer.Exit(code)


def _output_file(path: Path | None) -> Path | None:
    """Refuse, before any work is done, an output path that cannot be written (exit 2): a missing
    folder, no permission (click's ``dir_okay=False`` refuses a folder). A debate takes minutes;
    finding out only when writing lost them."""
    if path is None:
        return None
    folder = path.parent
    if not folder.is_dir():
        raise typer.BadParameter(f"folder {folder} does not exist")
    if not os.access(path if path.exists() else folder, os.W_OK):
        raise typer.BadParameter(f"cannot write {path}: permission denied")
    return path


def _write_file(path: Path, content: str | bytes) -> None:
    """Write ``content`` (text as UTF-8, or bytes) to ``path``; a failure the check above could not
    foresee (disk full, a race) is one clear error with exit 1."""
    try:
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror or exc}", code=1)


def _emit(text: str, output: Path | None) -> None:
    """An export as text: to ``output`` (saying where), or to stdout when no file is named."""
    if output:
        _write_file(output, text)
        out.print(f"written to {output}")
    else:
        sys.stdout.write(text)


# Bounded like the REST API (assistant.core.limits): out-of-range values are a usage error (exit 2), not
# an SQLite overflow or an empty search. Typer prints the allowed range.
K_RANGE = {"min": MIN_K, "max": MAX_K}
ID_RANGE = {"min": MIN_ID, "max": MAX_ID}
OUTPUT = {"callback": _output_file, "dir_okay": False}


def _suggest_stances(library, doc_ids: list[str]) -> None:
    """Stance suggestions once an ingest has stored its documents: without a local model file yet,
    none; a model that cannot answer (a server that is down or refuses) costs the suggestions only,
    with a line saying so, never the ingest."""
    from assistant.chains.stance import suggest_stances
    from assistant.models.model_files import ModelFileError
    from assistant.server.service import build

    pending = library.stances_to_suggest(doc_ids)
    if not pending:
        return
    try:
        suggest_stances(library, pending, build(library.settings, library=library).chat_model)
    except ModelFileError:  # no local model yet: the documents are added all the same
        return
    except Exception as exc:  # any backend's failure; the documents are stored either way
        err.print(f"stance suggestions skipped ({type(exc).__name__}: {exc}); the documents are stored without them")


def _settings_for(backend: str | None) -> Settings:
    settings = Settings()
    if backend is None:
        return settings
    if backend not in ("llamacpp", "openai", "extractive"):
        _fail(f"unknown backend {backend!r}; use llamacpp, openai or extractive")
    return settings.model_copy(update={"llm_backend": backend})


def _components(settings: Settings, doc_ids: list[str] | None = None):
    """The composition root's components over the library (a clear exit if it is empty or lacks one
    of ``doc_ids``), with the model loaded now, so a missing model file is reported before any work."""
    from assistant.server.service import build

    components = build(settings, library=_nonempty_library(settings, doc_ids))
    try:
        components.chat_model
    except UserError as exc:
        _fail(str(exc))
    return components


@app.command()
def ingest(
    items: Annotated[Optional[list[str]], typer.Argument(help="Files, folders or http(s) URLs; '-' reads text from stdin.")] = None,
    title: Annotated[Optional[str], typer.Option(help="Title for text read from stdin.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    stance: Annotated[Optional[str], typer.Option(help="Which side of the motion these articles argue: for, against or unknown (default: the manifest's, else unknown).")] = None,
) -> None:
    """Add articles to the library (re-adding an unchanged article changes nothing)."""
    items = list(items or [])
    texts: list[tuple[str, str | None]] = []
    if "-" in items or not items:
        if sys.stdin is None or sys.stdin.isatty():
            if not items:
                _fail("nothing to ingest: give files, folders or URLs, or pipe text with '-'")
        else:
            texts.append((sys.stdin.read(), title))
        items = [i for i in items if i != "-"]
    try:
        from ingest.pipeline import stored_document_ids

        library = _library()
        results = library.ingest(items, texts=texts, show_progress=not quiet, stance=stance)
    except UserError as exc:
        _fail(str(exc))
    _suggest_stances(library, stored_document_ids(results))
    table = Table("status", "item", "document", "passages", "note", show_lines=False)
    colours = {"added": "green", "replaced": "green", "unchanged": "dim", "duplicate": "yellow", "skipped": "yellow", "error": "red"}
    for r in results:
        removed = ", ".join(f"{k} {v}" for k, v in sorted(r.removed.items()))
        note = r.message + (f" (removed: {removed})" if removed else "")
        status = Text(r.status, style=colours.get(r.status, "white"))
        table.add_row(status, r.item, r.doc_id or "", str(r.n_passages or ""), note)
    out.print(table)
    counts = {s: sum(1 for r in results if r.status == s) for s in colours}
    out.print(", ".join(f"{n} {s}" for s, n in counts.items() if n) or "nothing to do")
    if counts["error"]:
        raise typer.Exit(1)


@app.command()
def documents(
    all_: Annotated[bool, typer.Option("--all", help="Also list unfinished (pending/deleting) documents.")] = False,
) -> None:
    """List the documents in the library."""
    docs = _library().documents(include_unfinished=all_)
    if not docs:
        out.print("The library is empty. Add articles with: da ingest PATH|URL")
        return
    table = Table("id", "title", "author", "date", "stance", "passages", "source", *(["status"] if all_ else []))
    for d in docs:
        table.add_row(d.id, d.title, d.author or "", d.date or "", d.stance_shown, str(d.n_passages), d.source,
                      *([d.status] if all_ else []))  # fmt: skip
    out.print(table)


@app.command()
def stance(
    doc_id: Annotated[str, typer.Argument(help="Document id (see 'da documents').")],
    value: Annotated[str, typer.Argument(help="for, against or unknown (advocate and skeptic also work)")],
) -> None:
    """Set which side of the motion a document argues (nothing is re-embedded)."""
    try:
        record = _library().set_stance(doc_id, value)
    except UserError as exc:
        _fail(str(exc))
    out.print(f"{record.id} ({record.title}): stance {record.stance_shown}")


@app.command()
def delete(doc_ids: Annotated[list[str], typer.Argument(help="Document ids (see 'da documents').")]) -> None:
    """Remove documents and all their passages."""
    library = _library()
    failed = False
    for doc_id in doc_ids:
        try:
            record = library.delete(doc_id)
            out.print(f"deleted {doc_id}: {record.title} ({record.n_passages} passages)")
        except UserError as exc:
            _error(str(exc))
            failed = True
    if failed:
        raise typer.Exit(2)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[Optional[int], typer.Option("-k", help="How many passages.", **K_RANGE)] = None,
    doc: Annotated[Optional[list[str]], typer.Option(help="Only these document ids (repeatable).")] = None,
    mode: Annotated[Optional[str], typer.Option(help="hybrid, dense or bm25.")] = None,
    mmr: Annotated[Optional[bool], typer.Option("--mmr/--no-mmr", help="Diversify results.")] = None,
) -> None:
    """Print the best-matching passages with scores and sources."""
    from assistant.retrieval.retrieval import HybridRetriever, Mode

    if mode not in (None, "hybrid", "dense", "bm25"):
        _fail(f"unknown mode {mode!r}; use hybrid, dense or bm25")
    try:
        library = _library()
        library.require_documents(doc)
        hits = HybridRetriever(library).retrieve(query, k, doc_ids=doc, mode=cast("Mode | None", mode), use_mmr=mmr)
    except UserError as exc:
        _fail(str(exc))
    if not hits:
        out.print("No matching passages (is the library empty? see 'da documents').")
        return
    for rank, hit in enumerate(hits, start=1):
        ranks = []
        if hit.dense_rank:
            ranks.append(f"dense #{hit.dense_rank} sim {hit.dense_similarity:.3f}")
        if hit.lexical_rank:
            ranks.append(f"bm25 #{hit.lexical_rank} {hit.lexical_score:.2f}")
        out.print(_styled((f"[{rank}]", "bold"), f" score {hit.score:.4f} ({'; '.join(ranks)})  ", (hit.title, "cyan"),
                          f"  {hit.source} chars {hit.start}-{hit.end}  id {hit.id}"))  # fmt: skip
        out.print(hit.text)
        out.print()


def _nonempty_library(settings: Settings, doc_ids: list[str] | None = None):
    """The library, or a clear exit if it is empty or lacks one of ``doc_ids``."""
    from assistant.storage.library import Library, UnknownDocumentError

    library = Library(settings)
    if not library.documents():
        _fail("the library is empty; add articles first with: da ingest PATH|URL")
    try:
        library.require_documents(doc_ids)
    except UnknownDocumentError as exc:
        _fail(str(exc))
    return library


def _print_flags(checked) -> None:
    """What the citation check removed, corrected or flagged in an answer or a debate turn."""
    for label, items in (
        ("removed invalid citation", checked.invalid_citations),
        ("citation corrected", checked.corrected_citations),
        ("no citation", checked.uncited_sentences),
        ("withdrawn, not supported by its evidence", render.withdrawn(checked.sentences)),
        ("repeats an earlier turn", getattr(checked, "repeated_sentences", [])),  # debate turns only
    ):
        for item in items:
            err.print(_styled((f"{label}:", "yellow"), f" {item}"))


def _print_source(number: int, passage) -> None:
    """A numbered source: its title, where it is from, and the passage's place in it."""
    out.print(_styled((f"[{number}]", "bold"), " ", (passage.title, "cyan"),
                      f"  {passage.source}  chars {passage.start}-{passage.end}"))  # fmt: skip


def _print_answer_report(answer) -> None:
    """Sources the answer cites, then anything the validator removed or flagged."""
    t = answer.timing
    if answer.withheld:
        err.print(_styled(("note:", "yellow"), " the model's reply was withheld: none of its sentences carried a "
                          "citation that the cited passage supports."))  # fmt: skip
    if answer.not_an_answer:
        err.print(_styled(("note:", "yellow"), f" not shown as the answer: {answer.relevance_reason}."))
    if answer.citations:
        out.print(_styled("\n", ("Sources", "bold")))
        for cited in answer.citations:
            p = cited.passage
            _print_source(cited.number, p)
            out.print("    " + " ".join(p.text.split()))
            for start, end in render.evidence_spans(answer.sentences).get(cited.number, []):
                quote = " ".join(p.text[start:end].split())
                out.print(_styled("    ", ("evidence", "green"), f" chars {start}-{end}: {quote}"))
    _print_flags(answer)
    first = f"{t.first_token_ms / 1000:.1f} s" if t.first_token_ms is not None else "-"
    err.print(Text(
        f"retrieval {t.retrieval_ms:.0f} ms, first token {first}, {t.output_tokens} tokens at "
        f"{t.tokens_per_s:.1f} tok/s, prompt {t.prompt_tokens} tokens, total {t.total_s:.1f} s", style="dim",
    ))


@app.command()
def ask(
    question: Annotated[Optional[str], typer.Argument(help="The question; leave out for an interactive chat.")] = None,
    k: Annotated[Optional[int], typer.Option("-k", help="How many passages to show the model.", **K_RANGE)] = None,
    doc: Annotated[Optional[list[str]], typer.Option(help="Only these document ids (repeatable).")] = None,
    backend: Annotated[Optional[str], typer.Option(help="llamacpp, openai or extractive (default: settings).")] = None,
) -> None:
    """Answer from the library with a citation after every claim; streams, then lists the sources.

    Without a question, starts a chat: follow-ups are understood in the context of earlier turns.
    """
    from assistant.chains.ask_events import Answer, QuoteFound

    settings = _settings_for(backend)
    chain = _components(settings, doc).ask_chain()
    history: list[tuple[str, str]] = []
    interactive = question is None
    while True:
        if interactive:
            try:
                question = input("\nquestion> ").strip()
            except EOFError:
                break
            if not question:
                continue
        try:
            answer = None
            for item in chain.stream(question, history, k=k, doc_ids=doc):
                if isinstance(item, Answer):
                    answer = item
                elif isinstance(item, str):  # the sources and each sentence's verdict come in the report below
                    out.print(item, end="", soft_wrap=True)
                elif isinstance(item, QuoteFound):  # quotes mode: each chosen sentence as soon as it is picked
                    out.print(_styled(item.display), end="", soft_wrap=True)
            out.print()
        except UserError as exc:
            if not interactive:
                _fail(str(exc))
            _error(str(exc))
            continue
        assert answer is not None
        if answer.withheld or settings.quote_answers:  # quotes mode: shown as laid out
            out.print(_styled(("Answer:", "bold"), f" {answer.text}"))
        _print_answer_report(answer)
        assert question is not None  # given, or read from the prompt above
        history.append((question, answer.text))
        if not interactive:
            break


@app.command()
def debate(
    motion: Annotated[str, typer.Argument(help="The motion or question to debate.")],
    rounds: Annotated[Optional[int], typer.Option(help="Rebuttal rounds (default: settings, 1).")] = None,
    advocate: Annotated[Optional[str], typer.Option(help="Name of the side for the motion.")] = None,
    advocate_stance: Annotated[Optional[str], typer.Option(help="What that side argues.")] = None,
    skeptic: Annotated[Optional[str], typer.Option(help="Name of the side against.")] = None,
    skeptic_stance: Annotated[Optional[str], typer.Option(help="What that side argues.")] = None,
    doc: Annotated[Optional[list[str]], typer.Option(help="Only these document ids (repeatable).")] = None,
    criterion: Annotated[Optional[str], typer.Option(help="What the judge weighs clashes by (default: the most direct evidence on the motion).")] = None,
    backend: Annotated[Optional[str], typer.Option(help="llamacpp, openai or extractive (default: settings).")] = None,
    export: Annotated[Optional[Path], typer.Option(help="Also write the transcript as Markdown here.", **OUTPUT)] = None,
) -> None:
    """Stage a cited debate: two openings, rebuttal rounds, the judge's ballot. Saved; see 'da debates'."""
    from assistant.core import personas
    from assistant.chains.debate_events import CardMade, TurnFinished, TurnStarted, TurnText
    from assistant.core.debate_record import Debate
    from assistant.present.transcript_export import to_markdown

    settings = _settings_for(backend)
    chain = _components(settings, doc).debate_chain()
    sides = {
        # An empty stance is filled in by the chain with the side's default.
        "advocate": personas.Persona(advocate or personas.ADVOCATE.name, advocate_stance or ""),
        "skeptic": personas.Persona(skeptic or personas.SKEPTIC.name, skeptic_stance or ""),
    }
    result = None
    carded: set[int] = set()  # turns shown as cards (their TurnText repeats the cards as plain lines)
    try:
        for event in chain.stream(motion, rounds, doc_ids=doc, criterion=criterion, **sides):
            if isinstance(event, TurnStarted):
                _print_speaker(event)
            elif isinstance(event, CardMade):
                carded.add(event.index)
                _print_card(event.card)
            elif isinstance(event, TurnText) and event.index not in carded:
                out.print(event.text, end="", soft_wrap=True)
            elif isinstance(event, TurnFinished):
                out.print()
                turn = event.turn
                if turn.no_material:
                    out.print(_styled(("shown instead:", "yellow"), f" {turn.text}"))
                _print_flags(turn)
            elif isinstance(event, Debate):
                result = event
    except UserError as exc:
        _fail(str(exc))
    assert result is not None
    out.print(_styled("\n", ("Sources", "bold")))
    for source in result.sources:
        _print_source(source.number, source.passage)
    if export:
        _write_file(export, to_markdown(result))
        out.print(f"transcript written to {export}")
    out.print(f"saved as debate {result.id} (da export {result.id})")


def _print_speaker(event) -> None:
    """A turn's heading: who speaks, in what kind of turn."""
    out.print(_styled("\n", (event.speaker, "bold magenta"), " ", (f"({event.kind})", "dim")))


def _print_card(card) -> None:
    """Tag in bold (what it answers, whether the tag is the trimmed quote), the quote, the source number."""
    colour = "green" if card.role == "advocate" else "red"
    answers = f" (answers {card.answers})" if card.answers else ""
    if card.answer_note:  # it named a point it does not answer (the rebuttal check dropped the link)
        answers = f" ({card.answer_note})"
    trimmed = "" if card.tag_from == "model" else " (tag: trimmed quote)"
    out.print(_styled((card.label, f"bold {colour}"), " ", (card.tag, "bold"), (answers, "dim"), (trimmed, "dim")))
    out.print(_styled(f"    “{card.quote}” ", (f"[{card.source}]", "bold")), soft_wrap=True)



def _transcripts(settings: Settings) -> TranscriptStore:
    """The saved debates and spar sessions, from the composition root (the library is not opened)."""
    from assistant.server.service import build

    return build(settings).transcripts

@app.command()
def debates() -> None:
    """List saved debates."""

    rows = _transcripts(Settings()).list()
    if not rows:
        out.print("No debates yet. Start one with: da debate \"motion\"")
        return
    table = Table("id", "motion", "started", "status", "turns")
    for debate_id, motion, created, status, n_turns in rows:
        table.add_row(str(debate_id), motion, created, status, str(n_turns))
    out.print(table)


@app.command(name="export")
def export_debate(
    debate_id: Annotated[int, typer.Argument(help="Debate id (see 'da debates').", **ID_RANGE)],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="File to write (default: stdout; docx needs a file).", **OUTPUT)] = None,
    format_: Annotated[str, typer.Option("--format", "-f", help="markdown (the transcript), brief (every card by side), "
                                         "docx (the cards by side as a Word document, with -o), json or flow (the flow "
                                         "sheet as a Markdown table).")] = "markdown",
) -> None:
    """Write a saved debate as Markdown with a numbered reference list, as a brief, as a Word document of its cards,
    as JSON, or its flow sheet."""
    from assistant.chains.flow import to_flow_markdown
    from assistant.present.transcript_export import to_brief, to_json, to_markdown

    writers = {"markdown": to_markdown, "md": to_markdown, "brief": to_brief, "flow": to_flow_markdown,
               "json": lambda d: json.dumps(to_json(d), ensure_ascii=False, indent=2) + "\n"}  # fmt: skip
    if format_ not in (*writers, "docx"):
        _fail(f"unknown format {format_!r}; use markdown, brief, docx, json or flow")
    if format_ == "docx" and output is None:  # binary: written to a terminal it is noise, piped it is easy to lose
        _fail("docx is a binary format: name the file to write with -o FILE.docx")
    try:
        debate = _transcripts(Settings()).get(debate_id)
    except KeyError:
        _fail(f"no debate with id {debate_id}; see 'da debates'")
    if format_ == "docx":
        from assistant.present.docx_export import to_docx

        assert output is not None  # a docx export without -o FILE was refused above
        _write_file(output, to_docx(debate))
        out.print(f"written to {output}")
        return
    _emit(writers[format_](debate), output)


@app.command(name="cards")
def motion_cards(
    motion: Annotated[str, typer.Argument(help="The motion, as debated (case, spacing and punctuation aside).")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="The .docx file to write (required).",
                                                   **OUTPUT)] = None,  # fmt: skip
) -> None:
    """Write every card on a motion, from all saved debates and spar sessions, as one Word document:
    by side, each quote once (a debate's own cards: da export ID --format docx)."""
    from assistant.present.docx_export import NoCardsError, motion_docx
    from assistant.core.inputs import QueryError, validate_text

    if output is None:  # binary, like export's docx
        _fail("the cards are a Word document: name the file to write with -o FILE.docx")
    settings = Settings()
    try:
        motion = validate_text(motion, settings.max_question_chars, "motion")
        document = motion_docx(motion, _transcripts(settings).on_motion(motion))
    except QueryError as exc:
        _fail(str(exc))
    except NoCardsError as exc:
        _fail(f"{exc}; see 'da debates' and 'da spar --list'")
    _write_file(output, document)
    out.print(f"written to {output}")


def _spar_chain(settings: Settings, with_model: bool = False, doc_ids: list[str] | None = None):
    """The spar chain over the library; without ``with_model`` (listing, export, scorecard) no model is loaded."""
    if with_model:
        return _components(settings, doc_ids).spar_chain()
    from assistant.server.service import build
    from assistant.models.llm import ExtractiveChatModel

    return build(settings, chat_model=ExtractiveChatModel()).spar_chain()


def _spar_session(chain, session_id: int):
    """A saved spar session, or a clear exit."""
    try:
        return chain.session(session_id)
    except KeyError:
        _fail(f"no spar session with id {session_id}; see 'da spar --list'")


_MARK_COLOURS = {"supported": "green", "contradicted": "red", "not found": "yellow"}


def _print_provisional(claim) -> None:
    """The rules' mark of a sentence while the local model still checks it: one dim line; the final mark follows."""
    out.print(_styled((f"{claim.label} {claim.mark}, checking…: {claim.text}", "dim")), soft_wrap=True)


def _print_mark(claim, was: str | None = None) -> None:
    """A sentence of the user's turn as checked: label, mark, [n], the sentence; then the deciding quote.
    ``was``: the provisional mark, when the final one differs (said, so a mark never changes unseen)."""
    cited = f" [{claim.source}]" if claim.source else ""
    colour = _MARK_COLOURS.get(claim.mark, "white")
    revised = f" (revised: the rules said {was})" if was is not None and was != claim.mark else ""
    out.print(_styled((claim.label, "bold"), " ", (claim.mark, colour), (cited, "bold"), f": {claim.text}",
                      (revised, "bold")), soft_wrap=True)  # fmt: skip
    if claim.quote and claim.mark != "not found":
        out.print(f"    “{claim.quote}”", soft_wrap=True)
    elif claim.quote:  # close to the claim, but it does not say it
        out.print(_styled("    ", (f"closest: “{claim.quote}” ({claim.reason})", "dim")), soft_wrap=True)
    elif claim.reason:
        out.print(_styled("    ", (claim.reason, "dim")), soft_wrap=True)


def _print_scorecard(card) -> None:
    from assistant.present.transcript_export import scorecard_markdown

    so_far = "" if card.complete else " (so far: the session is not over)"
    out.print(_styled("\n", ("Scorecard", "bold"), (so_far, "dim")))
    out.print(scorecard_markdown(card), soft_wrap=True)


def _read_turn(kind: str, limit: int) -> str | None:
    """One turn from stdin: lines up to an empty line (after some text) or the end of input; None if nothing came."""
    hint = f"(at most {limit} words; an empty line ends the turn)"
    out.print(_styled("\n", (f"your {kind}", "bold"), " ", (hint, "dim")))
    lines: list[str] = []
    while True:
        try:
            line = input("you> " if not lines else "...> ")
        except EOFError:
            break
        if line.strip():
            lines.append(line.strip())
        elif lines:
            break
    return " ".join(lines) if lines else None


def _play_spar_round(chain, session_id: int, text: str):
    """Play the user's ``text`` in the session: marks as they are checked, the assistant's cards, the
    scorecard after the closing; returns the saved session."""
    from assistant.chains.debate_events import CardMade, ClaimMarked, Scorecard, TurnFinished, TurnStarted, TurnText
    from assistant.core.debate_record import Debate

    result = None
    carded: set[int] = set()  # the assistant's turn shown as cards (its TurnText repeats them as plain lines)
    provisional: dict[str, str] = {}  # label -> the rules' mark, while the local model checks it
    for event in chain.play(session_id, text):
        if isinstance(event, TurnStarted):
            _print_speaker(event)
        elif isinstance(event, ClaimMarked) and not event.final:
            provisional[event.claim.label] = event.claim.mark
            _print_provisional(event.claim)
        elif isinstance(event, ClaimMarked):
            _print_mark(event.claim, provisional.pop(event.claim.label, None))
        elif isinstance(event, CardMade):
            carded.add(event.index)
            _print_card(event.card)
        elif isinstance(event, TurnText) and event.index not in carded:
            out.print(event.text, end="", soft_wrap=True)
        elif isinstance(event, TurnFinished) and event.turn.index not in carded and not event.turn.claims:
            out.print()
        elif isinstance(event, Scorecard):
            _print_scorecard(event)
        elif isinstance(event, Debate):
            result = event
    assert result is not None
    return result


def _list_spar_sessions() -> None:
    """Saved spar sessions, newest first, with the side the user argues and what comes next."""
    from assistant.chains.spar import SparChain
    from assistant.core.sides import DIRECTIONS

    store = _transcripts(Settings())
    rows = store.list(spar=True)
    if not rows:
        out.print('No spar sessions yet. Start one with: da spar --motion "..." --side against')
        return
    table = Table("id", "motion", "started", "you argue", "status", "turns", "next")
    for session_id, motion, created, status, n_turns in rows:
        session = store.get(session_id)
        if SparChain.unanswered(session) is not None:
            upcoming = "the assistant's answer to your last turn"
        else:
            upcoming = f"your {kind}" if (kind := SparChain.next_round(session)) else "-"
        table.add_row(str(session_id), motion, created, DIRECTIONS.get(session.user_side or "", ""), status, str(n_turns), upcoming)
    out.print(table)


def _play_spar(chain, session) -> None:
    """Ask for each remaining round's turn on stdin and play it; a turn the chain refuses (too long,
    empty) is explained and asked for again. The end of input leaves the session saved, to resume."""
    from assistant.core.sides import DIRECTIONS, opponent

    limit = chain.settings.spar_max_words
    out.print(_styled((f"spar session {session.id}", "bold"), f": {session.motion}\nyou argue {DIRECTIONS[session.user_side]} "
                      f"the motion, the assistant {DIRECTIONS[opponent(session.user_side)]} it; you speak first in each round."))  # fmt: skip
    resume = f"spar session {session.id} is saved; continue it with: da spar --resume {session.id}"
    try:
        while not chain.is_over(session):
            if chain.unanswered(session) is not None:  # a play stopped before the assistant answered: answer now
                out.print(Text("\nthe assistant had not answered your last turn yet; it answers now", style="dim"))
                session = _play_spar_round(chain, session.id, "")
                continue
            kind = chain.next_round(session)
            text = _read_turn(kind, limit)
            if text is None:
                out.print(f"\n{resume}")
                return
            try:
                chain.check_turn_text(text)
            except UserError as exc:
                _error(f"{exc}; please give your {kind} again")
                continue
            session = _play_spar_round(chain, session.id, text)
    except KeyboardInterrupt:
        err.print(f"\ninterrupted; {resume}")
        raise typer.Exit(130)
    except UserError as exc:
        _fail(str(exc))
    out.print(f"\nsaved as spar session {session.id} (da spar --export {session.id})")


def _check_spar_options(modes: list[str], given: dict[str, bool]) -> None:
    """Exactly one mode of ``da spar``, and only the options that go with it (else exit 2, saying which)."""
    if len(modes) != 1:
        _fail("start a session with --motion and --side, or use one of --resume ID, --list, --export ID or --scorecard ID"
              + (f" (not {' and '.join(modes)} together)" if modes else ""))  # fmt: skip
    allowed = {"--rounds": ("--motion",), "--doc": ("--motion",), "--backend": ("--motion", "--resume"), "--out": ("--export",)}
    for option, used in given.items():
        if used and modes[0] not in allowed[option]:
            _fail(f"{option} goes with {' or '.join(allowed[option])}, not with {modes[0]}")


def _export_spar_session(session_id: int, out_file: Path | None) -> None:
    """A saved session as Markdown, scorecard included, to ``out_file`` or stdout."""
    from assistant.present.transcript_export import to_spar_markdown

    chain = _spar_chain(Settings())
    session = _spar_session(chain, session_id)
    _emit(to_spar_markdown(session, chain.scorecard(session)), out_file)


@app.command()
def spar(
    motion: Annotated[Optional[str], typer.Option(help="Start a new session on this motion (with --side).")] = None,
    side: Annotated[Optional[str], typer.Option(help="The side you argue: for or against the motion; the assistant takes the other.")] = None,
    rounds: Annotated[Optional[int], typer.Option(help="Rebuttal rounds between opening and closing (default: settings, 1).")] = None,
    doc: Annotated[Optional[list[str]], typer.Option(help="Only these document ids (repeatable).")] = None,
    backend: Annotated[Optional[str], typer.Option(help="llamacpp, openai or extractive (default: settings).")] = None,
    resume: Annotated[Optional[int], typer.Option(help="Continue saved session ID at the round you play next.", **ID_RANGE)] = None,
    list_: Annotated[bool, typer.Option("--list", help="List saved spar sessions.")] = False,
    export: Annotated[Optional[int], typer.Option(help="Write saved session ID as Markdown, scorecard included.", **ID_RANGE)] = None,
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="File for --export (default: stdout).", **OUTPUT)] = None,
    scorecard: Annotated[Optional[int], typer.Option(help="Print the scorecard of session ID (so far, if it is not over).", **ID_RANGE)] = None,
) -> None:
    """Spar: argue one side of a motion against the assistant; each of your sentences is checked against the library.

    Rounds: opening, --rounds rebuttals, closing; you speak first in each. A turn is read from stdin up
    to an empty line (or the end of input). Saved after every turn; see --list, --resume, --export.
    """
    modes = [name for name, used in (("--motion", motion is not None or side is not None), ("--resume", resume is not None),
                                     ("--list", list_), ("--export", export is not None), ("--scorecard", scorecard is not None))
             if used]  # fmt: skip
    _check_spar_options(modes, {"--rounds": rounds is not None, "--doc": bool(doc), "--backend": backend is not None,
                                "--out": out_file is not None})  # fmt: skip
    if list_:
        _list_spar_sessions()
        return
    if export is not None:
        _export_spar_session(export, out_file)
        return
    if scorecard is not None:
        chain = _spar_chain(Settings())
        _print_scorecard(chain.scorecard(_spar_session(chain, scorecard)))
        return
    settings = _settings_for(backend)
    if resume is not None:
        chain = _spar_chain(settings, with_model=True)
        session = _spar_session(chain, resume)
        if chain.is_over(session):
            _fail(f"spar session {resume} is over; see da spar --scorecard {resume} or --export {resume}")
    else:
        if motion is None or side is None:
            _fail(f"a new session needs both --motion and --side (for or against); {'--side' if side is None else '--motion'} is missing")
        chain = _spar_chain(settings, with_model=True, doc_ids=doc)
        try:
            session = chain.start(motion, side, rounds, doc)
        except UserError as exc:
            _fail(str(exc))
    _play_spar(chain, session)


@app.command()
def reindex() -> None:
    """Rebuild the vector index from the registry (after changing the embedding model or chunking)."""
    try:
        n = _library().reindex(show_progress=True)
    except UserError as exc:
        _fail(str(exc))
    out.print(f"reindexed {n} passages")


@app.command()
def repair() -> None:
    """Finish ingests or deletes that an earlier crash interrupted."""
    try:
        touched = _library().finish_interrupted()
    except UserError as exc:
        _fail(str(exc))
    out.print("\n".join(touched) if touched else "nothing to repair: registry and store agree")


@app.command(name="app")
def run_app(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 7860,
    allow_no_auth: Annotated[bool, typer.Option(
        "--allow-no-auth", help="Serve a non-loopback --host without DA_API_TOKEN/DA_UI_PASSWORD (only behind "
        "a firewall or a proxy with its own login).")] = False,
) -> None:
    """Start the web app (without credentials only on 127.0.0.1; see README, Security)."""
    from assistant.server.app import main as serve_app

    serve_app(host=host, port=port, allow_no_auth=allow_no_auth)


def main() -> None:
    """The ``da`` command. A user error no command caught itself (a database server that is down,
    met while opening the library) is one line and exit 1, not a traceback."""
    try:
        app()
    except UserError as exc:
        _error(str(exc))
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
