"""The web app in a real browser: Debian's Chromium driven by Playwright, app on 127.0.0.1.

The full tour uses the real local model. Set README_SCREENSHOT_DIR to also save the screenshots
used in the README.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from assistant.server.service import Service
from assistant.core.debate_record import CONTRADICTED, NOT_FOUND, SUPPORTED
from tests.conftest import ARTICLES
from tests.servers import serve_app
from tests.spar_claims import CORPUS, TURNS
from ui import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = pytest.mark.slow  # test.sh installs /usr/bin/chromium when it is missing


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(url, wait_until="load")
    page.locator("#question textarea").wait_for(timeout=60_000)
    return page, dialogs


def _wait_text(page, selector: str, text: str, timeout: int = 30_000) -> None:
    """Wait until the element's visible text contains ``text`` (taken literally, markup included)."""
    page.wait_for_function(
        "([selector, text]) => (document.querySelector(selector)?.innerText || '').includes(text)",
        arg=[selector, text],
        timeout=timeout,
    )


def _shot(page, name: str) -> None:
    folder = os.environ.get("README_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=False)


def test_tour_ingest_ask_click_citation_debate_delete(browser, settings, tmp_path: Path) -> None:
    service = Service(settings.model_copy(update={"llm_max_tokens": 90, "debate_turn_max_tokens": 110}))
    upload = [shutil.copy(ARTICLES / name, tmp_path / name) for name in ("pro_engagement.txt", "skeptic.txt")]
    with serve_app(create_app(service)) as url:
        page, dialogs = _open(browser, url)

        # Library: upload two articles, see them listed with passage counts.
        page.get_by_role("tab", name="Library").click()
        page.locator("#upload input[type=file]").set_input_files(upload)
        page.locator("#add").click()
        _wait_text(page, "#documents", "Why Talking to Arandia Works", 120_000)
        _wait_text(page, "#documents", "The Limits of Engagement with Arandia")
        assert "added" in page.locator("#ingest-status textarea").input_value()
        _shot(page, "library")

        # Ask: a streamed answer whose [n] opens the cited passage.
        page.get_by_role("tab", name="Ask").click()
        page.locator("#question textarea").fill("How much grain crossed the border under the Harbor Accord?")
        page.locator("#ask-button").click()
        # The sources show while the model is still reading them, before its first word.
        page.locator('[data-testid="bot"]').get_by_text("Sources found").wait_for(timeout=180_000)
        cite = page.locator('[data-testid="bot"] a.cite').first
        cite.wait_for(timeout=180_000)
        target = cite.get_attribute("href").removeprefix("#")
        source = page.locator(f"details#{target}")
        assert source.get_attribute("open") is None
        cite.click()
        page.wait_for_function(f"document.getElementById('{target}').open === true")
        assert "40,000 tonnes" in source.inner_text() or "Arandia" in source.inner_text()
        assert "Why Talking to Arandia Works" in source.locator("summary").inner_text()
        _shot(page, "ask")

        # Debate: one rebuttal round, speakers in turn, the judge's ballot last (on the criterion typed),
        # transcript to download.
        page.get_by_role("tab", name="Debate").click()
        page.locator("#motion textarea").fill("Should the government offer Arandia a non-aggression pledge first?")
        page.locator("#criterion textarea").fill("impact on regional security")
        page.locator("#rounds input[type=number]").fill("1")
        page.locator("#rounds input[type=number]").press("Enter")
        page.locator("#start-debate").click()
        page.locator("#debate-status").get_by_text(re.compile(r"Debate \d+ saved")).wait_for(timeout=420_000)
        turns = page.locator("#transcript .turn")
        assert turns.count() == 5
        assert [turns.nth(i).locator("strong").first.inner_text() for i in range(5)] == [
            "For", "Against", "For", "Against", "judge",
        ]  # fmt: skip
        ballot = turns.nth(4).inner_text()
        assert "Judged on impact on regional security." in ballot and "Decision: " in ballot, ballot
        assert page.locator("#download").is_visible() and page.locator("#download-docx").is_visible()
        assert page.locator("#debate-flow table.flow").is_visible()  # the flow sheet, under the finished debate
        _shot(page, "debate")

        # Library: delete one document.
        doc_id = next(d.id for d in service.library.documents() if d.title == "The Limits of Engagement with Arandia")
        page.get_by_role("tab", name="Library").click()
        page.locator("#delete-id textarea").fill(doc_id)
        page.locator("#delete").click()
        page.locator("#ingest-status textarea").wait_for()
        page.wait_for_function(
            "!document.querySelector('#documents').innerText.includes('The Limits of Engagement with Arandia')",
            timeout=60_000,
        )
        assert [d.title for d in service.library.documents()] == ["Why Talking to Arandia Works"]
        assert dialogs == []
    service.close()


def test_markup_in_articles_and_answers_is_shown_as_text_never_run(browser, settings) -> None:
    service = Service(settings.model_copy(update={"llm_backend": "extractive"}))
    hostile = (
        'Harbour fees rose twice in one season <img src=x onerror="alert(1)"> and the ferry '
        "<script>alert(2)</script> kept running."
    )
    service.library.ingest([], texts=[(hostile, "<b>Harbour</b> report")])
    with serve_app(create_app(service)) as url:
        page, dialogs = _open(browser, url)
        page.locator("#question textarea").fill("How often did harbour fees rise in one season?")
        page.locator("#ask-button").click()
        answer = page.locator('[data-testid="bot"]').last
        answer.locator("a.cite").first.wait_for(timeout=60_000)
        assert "<img" in answer.inner_text() and "<script>" in answer.inner_text()
        assert answer.locator("img, script, b").count() == 0
        answer.locator("a.cite").first.click()
        page.get_by_role("tab", name="Library").click()
        _wait_text(page, "#documents", "<b>Harbour</b> report", 30_000)
        page.wait_for_timeout(500)
        assert dialogs == []
    service.close()


def test_debate_tab_downloads_every_saved_card_on_the_motion_typed(browser, settings) -> None:
    """No debate run in the page: the motion's file gathers what earlier debates saved (extractive baseline)."""
    service = Service(settings.model_copy(update={"llm_backend": "extractive"}))
    service.library.ingest([str(ARTICLES / "pro_engagement.txt"), str(ARTICLES / "skeptic.txt")])
    motion = "Should the government offer Arandia a non-aggression pledge first?"
    list(service.debate_chain.stream(motion, 0))
    with serve_app(create_app(service)) as url:
        page, dialogs = _open(browser, url)
        page.get_by_role("tab", name="Debate").click()
        page.locator("#motion textarea").fill(motion.lower())
        page.locator("#motion-cards").click()
        page.locator("#download-motion-cards").wait_for(state="visible", timeout=30_000)
        with page.expect_download() as download:
            page.locator("#download-motion-cards").click()
        assert download.value.suggested_filename == "cards-should-the-government-offer-arandia-a-non-aggression-pledge.docx"
        from docx import Document

        headings = [p.text for p in Document(download.value.path()).paragraphs if p.style.name == "Heading 1"]
        assert headings == ["For the motion", "Against the motion"]
        page.locator("#motion textarea").fill("Should the lighthouse close?")
        page.locator("#motion-cards").click()
        _toast(page, "no saved debate or spar session has the motion")
        assert not page.locator("#download-motion-cards").is_visible()  # the other motion's file is not offered
        assert dialogs == []
    service.close()


SPAR_MOTION = "Should Seoul revive the Sunshine Policy of engagement with North Korea?"
# Each time the transcript changes: how many marked sentences and how many cards it shows.
_RECORD_TRANSCRIPT = """() => {
  const transcript = document.querySelector('#spar-transcript');
  window.sparLog = [];
  new MutationObserver(() => window.sparLog.push([
    transcript.querySelectorAll('li.claim').length, transcript.querySelectorAll('.card').length,
  ])).observe(transcript, {childList: true, subtree: true, characterData: true});
}"""


def _toast(page, text: str) -> None:
    page.locator('[data-testid="toast-body"]').filter(has_text=text).first.wait_for(timeout=30_000)


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared (the seed corpus) is not present beside this checkout")
def test_spar_marks_each_claim_then_answers_with_advocate_cards_and_scores(browser, settings) -> None:
    service = Service(settings.model_copy(update={"debate_turn_max_tokens": 110}))
    service.library.ingest([str(CORPUS)])  # stances from its manifest.json
    with serve_app(create_app(service)) as url:
        page, dialogs = _open(browser, url)
        page.get_by_role("tab", name="Spar").click()
        turn_box = page.locator("#spar-turn textarea")

        # Bad input is refused with a message, and what was typed stays in the box.
        turn_box.fill(TURNS[0][0])
        page.locator("#spar-send").click()
        _toast(page, "Start a session")
        page.locator("#spar-start").click()
        _toast(page, "the motion is empty")
        page.locator("#spar-motion textarea").fill(SPAR_MOTION)
        page.locator("#spar-side").get_by_label("against the motion").check()
        page.locator("#spar-rounds input[type=number]").fill("1")
        page.locator("#spar-rounds input[type=number]").press("Enter")
        page.locator("#spar-start").click()
        _wait_text(page, "#spar-next", "Your opening")
        session_id = service.transcripts.list(spar=True)[0][0]
        too_long = " ".join(["engagement"] * (settings.spar_max_words + 1))
        turn_box.fill(too_long)
        _wait_text(page, "#spar-words", "over the limit")
        page.locator("#spar-send").click()
        _toast(page, f"the limit is {settings.spar_max_words}")
        assert turn_box.input_value() == too_long
        assert service.spar_chain.session(session_id).turns == []

        # Three turns; each sentence's mark is shown before the assistant's cards of that round.
        page.evaluate(_RECORD_TRANSCRIPT)
        for played, ((text, _), after) in enumerate(zip(TURNS, ["Your rebuttal", "Your closing", "Session over"])):
            cards_before = page.locator("#spar-transcript .card").count()
            turn_box.fill(text)
            page.locator("#spar-send").click()
            page.locator(f'#spar-transcript li.claim[data-label="U{played + 1}"]').wait_for(timeout=300_000)
            _wait_text(page, "#spar-next", after, 300_000)
            assert page.evaluate("window.sparLog").count([played + 1, cards_before]) >= 1  # marked, no new card yet
            # New cards, or the assistant's turn says it has nothing left to argue from: the side check can
            # set aside every sentence it is allowed to ask about (README, Debates, side check).
            assert (page.locator("#spar-transcript .card").count() > cards_before
                    or "nothing to argue" in page.locator("#spar-transcript").inner_text())  # fmt: skip
            assert turn_box.input_value() == ""  # saved: the turn is in the transcript now
            if played == 0:  # the scorecard on request, mid-session
                page.locator("#spar-score").click()
                page.locator('#scorecard td[data-role="skeptic"][data-count="contradicted"]').wait_for(timeout=60_000)
                assert page.locator('#scorecard td[data-role="skeptic"][data-count="claims"]').inner_text() == "1"

        claims = page.locator("#spar-transcript li.claim")
        marks = {claims.nth(i).get_attribute("data-label"): claims.nth(i).get_attribute("data-mark")
                 for i in range(claims.count())}  # fmt: skip
        assert marks == {f"U{n}": mark for n, (_, mark) in enumerate(TURNS, start=1)}
        contradicted = page.locator('#spar-transcript li.claim[data-mark="contradicted"]')
        assert "October 2006" in contradicted.inner_text() and contradicted.locator("a.cite").count() == 1
        assert "February 2016" in page.locator('#spar-transcript li.claim[data-mark="supported"]').inner_text()

        # The assistant argues the advocate side: every card quotes an advocate (or unknown) source.
        cards = page.locator("#spar-transcript .card")
        stances = [cards.nth(i).get_attribute("data-stance") for i in range(cards.count())]
        assert stances and set(stances) <= {"advocate", "unknown"}, stances
        sources = {s.number: s.stance for s in service.spar_chain.session(session_id).sources}
        assert all(sources[int(cards.nth(i).get_attribute("data-source"))] == stances[i] for i in range(cards.count()))

        # The final scorecard counts what the transcript shows.
        page.locator('#scorecard[data-complete="true"]').wait_for(timeout=60_000)

        def count(role: str, column: str) -> int:
            return int(page.locator(f'#scorecard td[data-role="{role}"][data-count="{column}"]').inner_text())

        shown = [claims.nth(i).get_attribute("data-mark") for i in range(claims.count())]
        assert count("skeptic", "claims") == len(shown) == 3
        for mark in (SUPPORTED, CONTRADICTED, NOT_FOUND):
            assert count("skeptic", mark.replace(" ", "-")) == shown.count(mark) == 1
        assert count("advocate", "claims") == cards.count()
        ballot = page.locator("#spar-ballot").inner_text()  # the session ends with the judge's ballot
        assert "Judged on the most direct evidence on the motion." in ballot and "Decision: " in ballot, ballot
        with page.expect_download() as download:
            page.locator("#spar-download").click()
        exported = Path(download.value.path()).read_text(encoding="utf-8")
        assert exported.startswith(f"# Spar: {SPAR_MOTION}") and "*contradicted* [" in exported and "## Scorecard" in exported
        assert service.spar_chain.session(session_id).status == "complete"
        assert service.transcripts.list(spar=True)[0][3] == "complete"
        page.locator("#spar-status").evaluate("element => element.scrollIntoView({block: 'start'})")
        _shot(page, "spar")  # the motion, what comes next, and the three marked claims with the cards between
        assert dialogs == []
    service.close()
