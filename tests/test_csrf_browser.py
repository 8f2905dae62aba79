"""Issue 32, in a real browser: a page from another origin attacks the default (no token) server.

Debian's Chromium (Playwright) opens an attacker page served by a second HTTP server on another
127.0.0.1 port: the same site as the app, another origin, as a malicious local tool or any page
reached by a redirect would be. The page tries what the probe did: (a) an auto-submitted
multipart form that adds a document with a stance, (b) a fetch DELETE of a document, (c) a fetch
upload to Gradio's upload route. Afterwards the library and Gradio's upload folder are as they
were, while the app's own page still adds a document the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.server.service import Service
from assistant.core.settings import Settings
from tests.conftest import ARTICLES
from tests.servers import serve, serve_app
from tests.test_browser import browser  # noqa: F401  (the module's Chromium, launched once)
from ui import create_app

pytestmark = pytest.mark.slow

ATTACKER_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Free prizes</title></head><body>
<iframe name="sink"></iframe>
<form id="add" method="post" enctype="multipart/form-data" action="{app}/api/documents" target="sink">
  <input name="text" value="Planted note: the Osk ferry must never sail again, say all the sources.">
  <input name="title" value="Planted"><input name="stance" value="skeptic">
</form>
<script>
window.attack = (async () => {{
  const out = {{}};
  try {{
    const r = await fetch({app_json} + "/api/documents/" + {doc_id}, {{method: "DELETE", credentials: "include"}});
    out.delete = r.status;
  }} catch (e) {{ out.delete = "blocked: " + e.name; }}
  const form = new FormData();
  form.append("files", new Blob(["Planted upload about the Osk ferry."], {{type: "text/plain"}}), "planted.txt");
  try {{
    const r = await fetch({app_json} + "/gradio_api/upload", {{method: "POST", body: form, mode: "no-cors",
                                                             credentials: "include"}});
    out.upload = r.type;
  }} catch (e) {{ out.upload = "blocked: " + e.name; }}
  await new Promise(resolve => {{
    document.querySelector("iframe").onload = resolve;
    document.getElementById("add").submit();
  }});
  out.form = "submitted";
  return out;
}})();
</script></body></html>"""


def _uploaded(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_a_page_from_another_origin_cannot_change_the_library(browser, tmp_path: Path,  # noqa: F811
                                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    gradio_dir = tmp_path / "gradio"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(gradio_dir))
    service = Service(Settings(data_dir=tmp_path / "data", llm_backend="extractive"))
    service.library.ingest([str(ARTICLES / "skeptic.txt")])
    before = [(d.id, d.title, d.stance) for d in service.library.documents()]
    with serve_app(create_app(service)) as app_url:
        page_html = ATTACKER_PAGE.format(app=app_url, app_json=json.dumps(app_url), doc_id=json.dumps(before[0][0]))
        with serve({"/": (200, {"Content-Type": "text/html; charset=utf-8"}, page_html.encode())}) as attacker_url:
            assert attacker_url != app_url
            page = browser.new_page()
            page.goto(attacker_url, wait_until="load")
            attack = page.evaluate("window.attack")
            page.close()
        after = [(d.id, d.title, d.stance) for d in service.library.documents()]
        uploaded = _uploaded(gradio_dir)

        # The app's own page, in the same browser, still uploads and adds (its requests carry its Origin).
        own = browser.new_page()
        own.goto(app_url, wait_until="load")
        own.get_by_role("tab", name="Library").click()
        article = tmp_path / "ferry.txt"
        article.write_text("Ferry timetable\n\nThe first ferry leaves Port Osk at 6:40 on weekdays.", encoding="utf-8")
        own.locator("#upload input[type=file]").set_input_files([str(article)])
        own.locator("#add").click()
        own.wait_for_function("(document.querySelector('#documents')?.innerText || '').includes('Ferry timetable')",
                              timeout=120_000)  # fmt: skip
        own.close()
        titles = sorted(d.title for d in service.library.documents())
    service.close()
    # What the page's script saw says little: a fetch whose answer it may not read fails in the page
    # even when the server did carry it out (before the fix, the DELETE did). The server's state counts.
    assert after == before, attack
    assert uploaded == [], attack
    assert titles == sorted([before[0][1], "Ferry timetable"])
