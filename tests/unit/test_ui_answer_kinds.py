"""Answer kinds in the chat view (AppTest): confident, tentative and abstained look different."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _kinds_script() -> None:
    """Renders one answer of the kind named in session state (AppTest runs this body)."""
    import streamlit as st

    from rag_app.records import Answer, Chunk, Citation, Hit
    from rag_app.ui.answer_view import render_answer

    chunk = Chunk(
        chunk_id="c1",
        text="Harrow Point Lighthouse was built by Margaret Ellery in 1871.",
        source="/d/harrow.md",
        doc_hash="h",
        start=0,
        end=61,
    )
    kind = st.session_state["kind"]
    quoted = st.session_state.get("with_quote", True)
    citation = Citation(
        marker=1,
        chunk_id="c1",
        source="/d/harrow.md",
        section="History",
        quote="Harrow Point Lighthouse was built by Margaret Ellery in 1871.",
        support=0.8,
    )
    render_answer(
        Answer(
            question="Who built the Harrow Point Lighthouse?",
            standalone_question="Who built the Harrow Point Lighthouse?",
            text="I don't know based on the provided documents."
            if kind == "abstained"
            else "Margaret Ellery",
            abstained=kind == "abstained",
            kind=kind,
            p_correct=0.55 if kind != "abstained" else None,
            mode="direct",
            prompt_name="qa",
            citations=[citation] if kind != "abstained" and quoted else [],
            hits=[Hit(chunk=chunk, score=1.0)],
        ),
        key="k",
    )


def render(kind: str, with_quote: bool = True) -> AppTest:
    at = AppTest.from_function(_kinds_script)
    at.session_state["kind"] = kind
    at.session_state["with_quote"] = with_quote
    return at.run()


def texts(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_confident_answer_has_green_badge_and_plain_text() -> None:
    at = render("confident")
    assert not at.exception
    md = texts(at)
    assert ":green-badge[:material/verified: Checked against the sources]" in md
    assert "Margaret Ellery" in md and "Probably" not in md
    assert not at.info and "orange" not in md


def test_tentative_answer_is_labelled_and_shows_its_quote() -> None:
    at = render("tentative")
    assert not at.exception
    md = texts(at)
    assert ":orange-badge[:material/help_center: Tentative — not verified]" in md
    assert ":orange[**Probably Margaret Ellery — not verified**]" in md
    quote = [m.value for m in at.markdown if m.value.startswith("> ")]
    assert quote and "built by Margaret Ellery in 1871" in quote[0]
    captions = " ".join(c.value for c in at.caption)
    assert "harrow\\.md" in captions and "55%" in captions
    assert "Checked against the sources" not in md


def test_tentative_answer_without_a_quote_says_so() -> None:
    at = render("tentative", with_quote=False)
    assert not at.exception
    assert any("No supporting quote" in c.value for c in at.caption)


def test_abstained_answer_is_an_info_box_with_closest_passages() -> None:
    at = render("abstained")
    assert not at.exception
    assert any("I don't know" in i.value for i in at.info)
    assert "badge" not in texts(at)
    assert at.expander and "harrow\\.md" in at.expander[0].label


def test_each_cited_passage_has_an_open_in_document_button() -> None:
    at = render("confident")
    assert [b.label for b in at.button] == ["Open in document"]
    assert at.button[0].key == "k-c1-open"
