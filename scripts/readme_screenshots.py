"""Retake the README screenshots from the real app on a real corpus (the local model, Debian chromium).

    .venv/bin/python scripts/readme_screenshots.py --corpus ../shared/corpus --out docs

Starts the app on 127.0.0.1 with a fresh data folder, ingests the corpus (stances from its
manifest.json), then in the browser: the Library tab, one question on the Ask tab, and a
debate with one rebuttal round on the Debate tab, saving library.png, ask.png and debate.png.
Takes a few minutes on two cores (the debate is most of it). Contacts nothing but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
QUESTION = "What does Lee say is the alternative to engaging North Korea?"
MOTION = "Should the United States offer North Korea security assurances before it disarms?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="folder of articles (with manifest.json)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from assistant.server.service import Service
    from assistant.core.settings import Settings
    from assistant.server.app import create_app
    from tests.servers import serve_app

    service = Service(Settings(data_dir=Path(tempfile.mkdtemp(prefix="da-shots-"))))
    service.library.ingest([str(args.corpus)])
    args.out.mkdir(parents=True, exist_ok=True)
    with serve_app(create_app(service)) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url, wait_until="load")
        page.locator("#question textarea").wait_for(timeout=60_000)

        page.get_by_role("tab", name="Library").click()
        page.wait_for_function("(document.querySelector('#documents')?.innerText || '').includes('advocate')",
                               timeout=60_000)  # fmt: skip
        page.screenshot(path=str(args.out / "library.png"))

        page.get_by_role("tab", name="Ask").click()
        page.locator("#question textarea").fill(QUESTION)
        page.locator("#ask-button").click()
        cite = page.locator('[data-testid="bot"] a.cite').first
        cite.wait_for(timeout=300_000)
        page.wait_for_function("!document.querySelector('[data-testid=\"bot\"]').innerText.includes('Sources found')",
                               timeout=300_000)  # the final answer has replaced the live view  # fmt: skip
        page.locator('[data-testid="bot"] a.cite').first.click()
        page.screenshot(path=str(args.out / "ask.png"))

        page.get_by_role("tab", name="Debate").click()
        page.locator("#motion textarea").fill(MOTION)
        page.locator("#rounds input[type=number]").fill("1")
        page.locator("#rounds input[type=number]").press("Enter")
        page.locator("#start-debate").click()
        page.locator("#debate-status").get_by_text(re.compile(r"Debate \d+ saved")).wait_for(timeout=900_000)
        page.locator("#transcript .turn").nth(2).scroll_into_view_if_needed()
        page.screenshot(path=str(args.out / "debate.png"))
        browser.close()
    service.close()
    print(f"saved {', '.join(str(args.out / n) for n in ('library.png', 'ask.png', 'debate.png'))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
