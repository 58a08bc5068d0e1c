"""UI answer view: an Answer's text, numbered sources, support, reasoning and agent trace."""

from __future__ import annotations

import streamlit as st

from rag_app.records import Answer, Citation, Hit
from rag_app.ui.text import as_quote, as_quote_with_span, as_text, location, short_source

MODE_LABELS = {"direct": "Direct", "cot": "Chain of thought", "cited": "Cited", "agent": "Agent"}


def render_answer(answer: Answer) -> None:
    """The whole answer block under an assistant message (text included)."""
    if answer.abstained:
        render_abstention(answer)
        return
    st.markdown(as_text(answer.text))
    render_details(answer)


def render_abstention(answer: Answer) -> None:
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
            _hit_expander(i, hit)
    _trace(answer)


def render_details(answer: Answer) -> None:
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
            _citation_expander(citation, passages)
        _other_passages(answer)
    elif answer.hits:
        st.caption("Passages given to the model:")
        for i, hit in enumerate(answer.hits, start=1):
            _hit_expander(i, hit)
    _trace(answer)


def _other_passages(answer: Answer) -> None:
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


def _summary_line(answer: Answer) -> str:
    parts = [MODE_LABELS.get(answer.mode, answer.mode)]
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


def _citation_expander(citation: Citation, passages: dict[str, str]) -> None:
    passage = passages.get(citation.chunk_id, "")
    where = location(citation.page, citation.section)
    label = f"[{citation.marker}] {short_source(citation.source)}"
    label += f" · {where}" if where else ""
    with st.expander(as_text(label)):
        st.markdown(
            as_quote_with_span(passage, citation.quote) if passage else as_quote(citation.quote)
        )
        st.caption(as_text(f"{citation.source} · support {citation.support:.2f}"))


def _hit_expander(index: int, hit: Hit) -> None:
    chunk = hit.chunk
    where = location(chunk.page, chunk.section)
    label = f"{index}. {short_source(chunk.source)}" + (f" · {where}" if where else "")
    with st.expander(as_text(label)):
        st.markdown(as_quote(chunk.text))
        st.caption(as_text(chunk.source))


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
