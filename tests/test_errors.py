"""One type for user errors (``assistant.core.errors.UserError``): every error meant for the user is
one, with the status the API answers with, and the API, the CLI and the UI read that one type."""

from __future__ import annotations

import pytest

from assistant.chains.debate import DebateError
from assistant.chains.spar import SparError
from assistant.core.errors import UserError
from assistant.core.sides import StanceError
from assistant.models.model_files import ModelFileError
from assistant.present.docx_export import NoCardsError
from assistant.core.inputs import QueryError
from assistant.server.responses import error_event
from assistant.server.generation_queue import QueueTimeout, ShuttingDown
from assistant.storage.library import UnknownDocumentError
from assistant.storage.store import EmbeddingMismatchError, StoreUnavailableError


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (QueryError("the question is empty"), 422, None),
        (DebateError("rounds must be at most 5"), 422, None),
        (SparError("the session is over"), 422, None),
        (StanceError("stance must be one of for, against"), 422, None),
        (UnknownDocumentError("abc"), 404, None),
        (NoCardsError("no saved debate on this motion has a card"), 404, None),
        (EmbeddingMismatchError("built with another model; run da reindex"), 409, None),
        (ModelFileError("the model file is missing"), 503, None),
        (StoreUnavailableError("the Chroma server at 127.0.0.1:8000 did not answer"), 503, "10"),
        (QueueTimeout(120, 45), 503, "45"),
        (ShuttingDown(), 503, "10"),
    ],
)
def test_every_user_error_reaches_the_client_with_its_status_and_message(error: UserError, status: int,
                                                                          retry_after: str | None) -> None:  # fmt: skip
    assert isinstance(error, UserError)
    mapped = error_event(error)
    assert mapped is not None
    assert mapped[0] == status and mapped[1] == {"detail": str(error)} and str(error)
    assert mapped[2] == ({"Retry-After": retry_after} if retry_after else {})


def test_an_error_that_is_not_a_user_error_is_a_bug() -> None:
    assert error_event(RuntimeError("a bug")) is None and error_event(KeyError("x")) is None
    # The builtin bases stay, so code that caught them keeps working.
    assert isinstance(QueryError("x"), ValueError) and isinstance(UnknownDocumentError("x"), KeyError)
    assert "no document with id 'abc'" in str(UnknownDocumentError("abc"))
