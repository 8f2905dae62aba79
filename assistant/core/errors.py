"""One type for every error whose message is meant for the person who asked.

The CLI prints it and exits 1, the web UI shows it as the tab's error, and the REST API answers
with its ``status`` (and ``Retry-After`` when ``retry_after_s`` is set), both before a stream and
as a stream's last "error" line. Anything else that escapes is a bug: a 500, logged. A new user
error is a subclass with its status; no surface keeps a list of them.
"""

from __future__ import annotations

from typing import ClassVar


class UserError(Exception):
    """An error the user caused or can act on; its message says what to do.

    ``status``: the HTTP status the API answers with (422: the request cannot be done as asked;
    404: it names something that does not exist; 409: it conflicts with what is stored; 503: try
    again later). ``retry_after_s``: seconds to wait before trying again, when that helps.
    """

    status: ClassVar[int] = 422
    retry_after_s: int | None = None
