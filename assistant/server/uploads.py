"""Upload forms read as they stream in, each file checked against ``max_file_bytes`` on the way.

FastAPI's ``UploadFile`` parameters spool the whole request to disk before the endpoint runs,
so a size check could only come after a 10 GB upload had been stored. Here Starlette's own
multipart parser is used with one addition: every chunk of a file part is counted, and the part
that passes the limit stops the parse at once (its spooled copy is closed, nothing is kept),
and the request is answered 413 with the file's name.
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

# After a refusal, this much of the rest of the body, for at most this long, is still read (and
# dropped, never stored), so that an ordinary client gets to read the 413 instead of a broken pipe.
_DRAIN_LIMIT_BYTES = 16 * 1024 * 1024
_DRAIN_TIMEOUT_S = 5.0


class UploadTooLarge(MultiPartException):
    """A file in the upload is larger than ``max_file_bytes``."""

    def __init__(self, filename: str | None, limit: int) -> None:
        super().__init__(
            f"{filename or 'an uploaded file'} is over the {limit}-byte limit (max_file_bytes); nothing was added"
        )


class _SizeLimitedParser(MultiPartParser):
    def __init__(self, request: Request, max_file_bytes: int, max_files: int, max_fields: int) -> None:
        super().__init__(request.headers, request.stream(), max_files=max_files, max_fields=max_fields)
        self.max_file_bytes = max_file_bytes
        self._file_bytes = 0

    def on_part_begin(self) -> None:
        super().on_part_begin()
        self._file_bytes = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current_part.file is not None:
            self._file_bytes += end - start
            if self._file_bytes > self.max_file_bytes:
                raise UploadTooLarge(self._current_part.file.filename, self.max_file_bytes)
        super().on_part_data(data, start, end)


async def read_form(request: Request, max_file_bytes: int, max_files: int = 1000, max_fields: int = 100) -> FormData:
    """The request's form fields and files; raises ``UploadTooLarge`` as soon as one file passes
    ``max_file_bytes``, ``MultiPartException`` for a malformed body. Close the form when done."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return await request.form(max_files=0, max_fields=max_fields)  # url-encoded fields, no files
    try:
        return await _SizeLimitedParser(request, max_file_bytes, max_files, max_fields).parse()
    except UploadTooLarge:
        await _drain(request)
        raise


async def _drain(request: Request) -> None:
    """Read and drop what the client is still sending, within bounds of size and time."""
    drained = 0
    try:
        async with asyncio.timeout(_DRAIN_TIMEOUT_S):
            while drained <= _DRAIN_LIMIT_BYTES:
                message = await request.receive()
                if message["type"] != "http.request":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
    except TimeoutError:
        pass
