"""UI answer view: an Answer by its kind (confident, tentative, abstained), sources and trace.

The three kinds must look different at a glance: a confident answer carries a green "checked"
badge; a tentative one sits in an orange box, reads "Probably X — not verified" and always shows
the quote that supports it; an abstention is a blue "I don't know" with the closest passages.
"""

from __future__ import annotations

import streamlit as st

from rag_app.records import Answer, Citation, Hit
from rag_app.ui.source_view import SourceRef, citation_ref, open_button
from rag_app.ui.text import as_quote, as_quote_with_span, as_text, location, short_source

MODE_LABELS = {"direct": "Direct", "cot": "Chain of thought", "cited": "Cited", "agent": "Agent"}
CONFIDENT_BADGE = "Checked against the sources"
TENTATIVE_BADGE = "Tentative — not verified"
NO_QUOTE = "No supporting quote came with this answer: treat it as a guess."


def tentative_headline(answer: Answer) -> str:
    """'Probably X — not verified' (plain text; escape it before rendering)."""
    return f"Probably {answer.text.strip()} — not verified"


def render_answer(answer: Answer, key: str = "answer") -> None:
    """The whole answer block under an assistant message (text included); `key` makes the
    buttons of this message unique on the page."""
    if answer.abstained:
        render_abstention(answer, key)
    elif answer.kind == "tentative":
        render_tentative(answer, key)
    else:
        st.badge(CONFIDENT_BADGE, icon=":material/verified:", color="green")
        st.markdown(as_text(answer.text))
        render_details(answer, key)


def render_tentative(answer: Answer, key: str) -> None:
    """A grounded but unverified answer: labelled as such, with its quote right under it."""
    with st.container(border=True):
        st.badge(TENTATIVE_BADGE, icon=":material/help_center:", color="orange")
        st.markdown(f":orange[**{as_text(tentative_headline(answer))}**]")
        if answer.citations:
            citation = answer.citations[0]
            st.markdown(as_quote(citation.quote or answer.quote))
            where = location(citation.page, citation.section)
            label = f"[{citation.marker}] {short_source(citation.source)}"
            st.caption(as_text(label + (f" · {where}" if where else "")))
            open_button(citation_ref(citation), f"{key}-tentative-open")
        else:
            st.caption(NO_QUOTE)
        if answer.p_correct is not None:
            st.caption(f"Estimated chance it is right: {answer.p_correct:.0%}")
    render_details(answer, key)


def render_abstention(answer: Answer, key: str = "answer") -> None:
    """An 'I don't know' answer, shown as such, with the closest passages found."""
    st.info(
        "**I don't know** — no answer to this could be found and checked in the documents.",
        icon=":material/help:",
    )
    if answer.message:
        st.caption(as_text(answer.message))
    related = answer.related or answer.hits
    if related:
        st.caption("Closest passages found:")
        for i, hit in enumerate(related, start=1):
            _hit_expander(i, hit, f"{key}-rel{i}")
    _trace(answer)


def render_details(answer: Answer, key: str = "answer") -> None:
    """Everything below the answer text: support line, sources, unsupported sentences, trace."""
    if answer.message:
        st.caption(as_text(answer.message))
    st.caption(_summary_line(answer))
    unsupported = [s.sentence for s in answer.sentences if not s.supported]
    if unsupported:
        with st.container(border=True):
            st.markdown(":orange[**Not supported by the sources**]")
            for sentence in unsupported:
                st.markdown(f"- {as_text(sentence)}")
    if answer.citations:
        passages = {hit.chunk.chunk_id: hit.chunk.text for hit in answer.hits}
        for citation in answer.citations:
            _citation_expander(citation, passages, f"{key}-c{citation.marker}")
        _other_passages(answer, key)
    elif answer.hits:
        st.caption("Passages given to the model:")
        for i, hit in enumerate(answer.hits, start=1):
            _hit_expander(i, hit, f"{key}-hit{i}")
    _trace(answer)


def _other_passages(answer: Answer, key: str) -> None:
    """The passages the model read but did not cite, in one closed expander (transparency)."""
    cited = {c.chunk_id for c in answer.citations}
    others = [(n, h) for n, h in enumerate(answer.hits, start=1) if h.chunk.chunk_id not in cited]
    if not others:
        return
    with st.expander(f"Other passages read ({len(others)})"):
        for n, hit in others:
            where = location(hit.chunk.page, hit.chunk.section)
            label = f"[{n}] {short_source(hit.chunk.source)}" + (f" · {where}" if where else "")
            st.markdown(f"**{as_text(label)}**")
            st.markdown(as_quote(hit.chunk.text))
            open_button(SourceRef(hit.chunk.chunk_id, f"[{n}]"), f"{key}-other{n}")


def _summary_line(answer: Answer) -> str:
    parts = [MODE_LABELS.get(answer.mode, answer.mode)]
    if answer.p_correct is not None and answer.kind == "confident":
        parts.append(f"p(right) {answer.p_correct:.2f}")
    if answer.sentences:
        supported = sum(s.supported for s in answer.sentences)
        parts.append(
            f"support {answer.support_score:.2f} ({supported}/{len(answer.sentences)} sentences)"
        )
    count = len(answer.citations)
    parts.append(f"{count} source{'s' if count != 1 else ''}")
    if answer.timings.total_s:
        parts.append(f"{answer.timings.total_s:.1f} s")
    return " · ".join(parts)


def _citation_expander(citation: Citation, passages: dict[str, str], key: str) -> None:
    passage = passages.get(citation.chunk_id, "")
    where = location(citation.page, citation.section)
    label = f"[{citation.marker}] {short_source(citation.source)}"
    label += f" · {where}" if where else ""
    with st.expander(as_text(label)):
        st.markdown(
            as_quote_with_span(passage, citation.quote) if passage else as_quote(citation.quote)
        )
        st.caption(as_text(f"{citation.source} · support {citation.support:.2f}"))
        open_button(citation_ref(citation), f"{key}-open")


def _hit_expander(index: int, hit: Hit, key: str) -> None:
    chunk = hit.chunk
    where = location(chunk.page, chunk.section)
    label = f"{index}. {short_source(chunk.source)}" + (f" · {where}" if where else "")
    with st.expander(as_text(label)):
        st.markdown(as_quote(chunk.text))
        st.caption(as_text(chunk.source))
        open_button(SourceRef(chunk.chunk_id, f"passage {index}"), f"{key}-open")


def _trace(answer: Answer) -> None:
    if answer.reasoning:
        with st.expander("Reasoning"):
            st.markdown(as_text(answer.reasoning))
    if answer.plan or answer.steps:
        with st.expander(f"Agent plan and steps ({len(answer.steps)})"):
            if answer.plan:
                st.markdown("**Plan**")
                st.markdown("\n".join(f"1. {as_text(q)}" for q in answer.plan))
            for step in answer.steps:
                _agent_step(step.index, step.thought, step.action, step.action_input)
                st.markdown(as_quote(step.observation or "(no observation)"))
                if step.error:
                    st.caption(as_text(f"error: {step.error}"))


def _agent_step(index: int, thought: str, action: str, action_input: str) -> None:
    st.markdown(f"**Step {index}** · {as_text(action)} → {as_text(action_input)}")
    if thought:
        st.caption(as_text(thought))
