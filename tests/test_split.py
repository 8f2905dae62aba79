import pytest
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st

from assistant.storage.embeddings import load_tokenizer
from assistant.core.settings import Settings
from ingest.clean import clean_text
from ingest.split import PassageSplitter

from tests.conftest import ARTICLES


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(Settings())


def test_passages_fit_the_window_and_map_back_to_the_text(tokenizer) -> None:
    splitter = PassageSplitter(tokenizer, chunk_tokens=40, overlap_tokens=8)
    text = clean_text((ARTICLES / "pro_engagement.txt").read_text()).text
    passages = splitter.split(text)
    assert len(passages) > 3
    for i, p in enumerate(passages):
        assert p.index == i
        assert text[p.start : p.end] == p.text
        assert len(tokenizer.tokenize(p.text)) <= 40
    # Together the passages cover every word of the document.
    covered = set()
    for p in passages:
        covered.update(range(p.start, p.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_sentence_boundaries_are_preferred(tokenizer) -> None:
    splitter = PassageSplitter(tokenizer, chunk_tokens=30, overlap_tokens=0)
    text = " ".join(f"Sentence number {n} says something short about topic {n}." for n in range(12))
    for p in splitter.split(text):
        assert p.text.endswith(".")


_alphabet = st.sampled_from(list("abcdefghij klmnop.,;!?\n\n\"'’—é") + ["  ", "\n\n", "Arandia"])


@hyp_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.lists(_alphabet, min_size=0, max_size=400).map("".join))
def test_offsets_always_map_back(tokenizer, text: str) -> None:
    splitter = PassageSplitter(tokenizer, chunk_tokens=24, overlap_tokens=6)
    for p in splitter.split(text):
        assert text[p.start : p.end] == p.text
        assert p.text.strip() == p.text and p.text


def test_abbreviations_and_initials_never_end_a_passage(tokenizer) -> None:
    """A passage cut at "U.S." splits the sentence in two and neither passage holds it whole."""
    sentence = "Kim told the envoy in October 2000 that, with U.S. security assurances, he would refocus resources."
    text = " ".join(["Filler sentence number one about harbours and grain and the long winter."] * 6 + [sentence]
                    + ["Dr. J. Lee met officials on Jan. 15, 2024 in the capital of the island."] * 6)  # fmt: skip
    passages = PassageSplitter(tokenizer, chunk_tokens=40, overlap_tokens=8).split(text)
    assert any(sentence in p.text for p in passages)
    assert not any(p.text.endswith(("U.S.", "Dr.", "J.", "Jan.")) for p in passages)


def test_passages_are_whole_sentences_even_around_abbreviations(tokenizer) -> None:
    from assistant.core.text import sentence_spans

    text = ("The U.S. Navy and the Arandian coast guard met on Jan. 15, 2019 near Lisk. "
            "Dr. J. Reyne of the U.N. mission chaired the talks. The talks ended well. "
            "Observers from the U.K. and the E.U. said so.")  # fmt: skip
    starts = {s.start for s in sentence_spans(text)}
    ends = {s.end for s in sentence_spans(text)}
    for chunk_tokens in (24, 30, 40):  # every sentence fits: only longer ones may be cut inside
        passages = PassageSplitter(tokenizer, chunk_tokens=chunk_tokens, overlap_tokens=0).split(text)
        assert len(passages) >= 2
        for p in passages:
            assert p.start in starts and p.end in ends, (chunk_tokens, p.text)
