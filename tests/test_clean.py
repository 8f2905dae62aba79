from ingest.clean import clean_text, guess_author, guess_title, normalize_text

from tests.conftest import ARTICLES


def test_fixture_article_loses_boilerplate_but_keeps_content() -> None:
    result = clean_text((ARTICLES / "pro_engagement.txt").read_text())
    text = result.text
    for boilerplate in ("Share on Facebook", "To read the full essay", "do not necessarily", "Next",
                        "Winter Soup"):
        assert boilerplate not in text
    for content in ("Harbor Accord", "40,000 tonnes", "Varn Strait", "non-aggression pledge"):
        assert content in text
    # The author bio is kept once, its near-identical repeat is dropped.
    assert text.count("Mira Castell is a senior fellow") == 1
    assert result.removed["repeat"] == 1
    assert result.removed["footer"] >= 2
    # A photo caption is a fact (who, where, credited to whom): kept, and marked as a caption.
    assert "\n\nPhoto caption: In this photo provided by the Arandian news agency" in text
    assert "Credit: Arandian News Service" in text


def test_publisher_self_description_in_the_footer_is_kept_and_the_rest_of_the_footer_is_not() -> None:
    body = "Real paragraph about harbours and the long negotiations over their use. " * 12
    raw = (f"Title\n\n{body}\n\nThe views expressed here do not necessarily reflect those of the Council.\n\n"
           "Harbour Council\n\nThe Harbour Council is dedicated to maritime cooperation in the north.\n\n"
           "Next\n\nTen Recipes for Winter Soup")
    result = clean_text(raw)
    assert result.text.endswith("\n\nAbout: The Harbour Council is dedicated to maritime cooperation in the north.")
    assert "Winter Soup" not in result.text and "do not necessarily" not in result.text
    assert result.removed["footer"] == 4


def test_short_dek_repeated_inside_the_body_is_dropped() -> None:
    dek = "The quiet border talks of last spring achieved more than anyone expected at the time."
    raw = f"Headline Here\n\n{dek}\n\nOpening paragraph. {dek} More detail follows in this paragraph."
    text = clean_text(raw).text
    assert text.count("quiet border talks") == 1
    assert text.startswith("Headline Here\n\nOpening paragraph.")


def test_navigation_in_the_middle_does_not_truncate_the_article() -> None:
    raw = "Title\n\nFirst real paragraph about rivers.\n\nNext\n\n" + "Second real paragraph about lakes. " * 20
    text = clean_text(raw).text
    assert "Second real paragraph" in text
    assert "\nNext\n" not in text


def test_short_paragraphs_that_repeat_are_kept() -> None:
    raw = "Title\n\nYes.\n\nSome text between.\n\nYes."
    assert clean_text(raw).text.count("Yes.") == 2


def test_normalize_text_removes_control_characters_and_unifies_newlines() -> None:
    assert normalize_text("a\r\nb\x07c\u00a0d  \n") == "a\nbc d\n"


def test_title_and_author_guesses() -> None:
    text = clean_text((ARTICLES / "skeptic.txt").read_text()).text
    assert guess_title(text) == "The Limits of Engagement with Arandia"
    assert guess_author(text) == "Tomas Reyne"
    assert guess_author(clean_text((ARTICLES / "pro_engagement.txt").read_text()).text) == "Mira Castell"
    assert guess_title("This is a full sentence that ends with a period.\n\nMore.") is None
