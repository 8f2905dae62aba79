"""Saved llama.cpp states of fixed system prompts, so a prompt's instructions are read once per process.

The chat prompts of the project start with a system message that does not change from call to
call (the answer instructions, a debater's persona, the moderator's and the follow-up rewriter's
rules); what changes (sources, question, cards) follows in the user message. llama.cpp reuses
evaluated tokens only while the new prompt continues the one before it, and on this 2-core
machine prompts are read at ~90 tokens/s, so the answer's ~90 instruction tokens cost about a
second whenever a debate turn, a follow-up rewrite or a stance suggestion ran in between (and
for the first question after every such call). Here the key/value cells of such a prefix are
copied out once (``llama_state_seq_get_data``: only sequence 0's cells, a few MB, not the whole
context with its logits) and copied back in when a prompt starts with it. (The verifier's and
the relevance judge's Yes/No prompts run in a context of their own and never evict these.)
"""

from __future__ import annotations

import ctypes
import threading
from collections import OrderedDict
from typing import Any


class PrefixSnapshots:
    """The saved prefix states of one loaded model, most recently used last.

    Not thread-safe by itself: callers hold the model's generation lock, as for any use of it.
    """

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self._states: OrderedDict[tuple[int, ...], bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def restore(self, llama: Any, prefix: list[int]) -> bool:
        """Put the saved state of exactly ``prefix`` into the context; False if none is saved."""
        key = tuple(prefix)
        state = self._states.get(key)
        if state is None:
            return False
        import llama_cpp

        llama._ctx.kv_cache_seq_rm(-1, 0, -1)
        buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if llama_cpp.llama_state_seq_set_data(llama._ctx.ctx, buffer, len(state), 0) != len(state):
            llama._ctx.kv_cache_seq_rm(-1, 0, -1)
            llama.n_tokens = 0
            del self._states[key]
            return False
        llama.input_ids[: len(prefix)] = prefix
        llama.n_tokens = len(prefix)
        self._states.move_to_end(key)
        return True

    def save(self, llama: Any) -> None:
        """Save the context's evaluated tokens (``llama.n_tokens`` of them) as a prefix state."""
        import llama_cpp

        key = tuple(llama.input_ids[: llama.n_tokens].tolist())
        if not key or key in self._states:
            return
        size = llama_cpp.llama_state_seq_get_size(llama._ctx.ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(llama._ctx.ctx, buffer, size, 0)
        if not written:
            return
        self._states[key] = bytes(buffer[:written])
        while len(self._states) > self.capacity:
            self._states.popitem(last=False)

    def clear(self) -> None:
        self._states.clear()


_by_model: dict[int, PrefixSnapshots] = {}
_guard = threading.Lock()


def snapshots_of(llama: Any) -> PrefixSnapshots:
    """The prefix states of one loaded model (one store per ``Llama`` instance)."""
    with _guard:
        return _by_model.setdefault(id(llama), PrefixSnapshots())
