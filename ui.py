"""The web app's entry point: ``python ui.py`` (or ``da app``) serves the Gradio tabs and the REST API.

The app itself is built in ``assistant.server.app`` (the tabs in ``assistant.server.ui``); nothing under ``assistant/`` imports this file,
so data flows one way: the package builds the app, this file starts it.
"""

from assistant.server.app import create_app, main, serve  # noqa: F401  (what the entry point offers)
from assistant.server.ui import build_blocks  # noqa: F401

if __name__ == "__main__":
    main()
