"""UI quality page: a KB's golden set (written, imported or drafted), evaluation, then results
(rag_app.ui.quality_results: headline figures, per-question table, trend).

Thin: the set lives in eval.golden, runs in eval.golden_run (the same as `rag eval run --kb NAME
--golden FILE`), drafting in eval.golden_draft; evaluation runs in a background thread
(rag_app.ui.quality_jobs) while a fragment polls its progress.
"""

from __future__ import annotations

import random
from typing import Any

import pandas as pd
import streamlit as st

from eval.golden import GoldenItem, GoldenSetError, load_golden, parse_golden, save_golden, to_csv
from eval.golden_run import run_golden
from rag_app.errors import RagError
from rag_app.settings import Settings
from rag_app.ui import quality_jobs, state
from rag_app.ui.quality_results import render_results
from rag_app.ui.text import as_text

NOTICE_KEY = "quality_notice"
DRAFTS_KEY = "quality_drafts"
ROUND_KEY = "quality_round"  # bumped to reset the editor and the import drop zone
COLUMNS = ["question", "expected", "source"]


def render_quality_page() -> None:
    settings = state.current_settings()
    kb = settings.kb
    st.subheader(as_text(f"Answer quality on {kb}"))
    st.caption(
        "Your own test questions with the answers you expect. Evaluate asks each one as the "
        "chat would and scores the answers, so you can see whether a change of settings helped."
    )
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        (st.success if notice[0] else st.error)(as_text(notice[1]))
    if not settings.kb_dir(kb).exists():
        st.info(
            as_text(f"Knowledge base {kb} has no documents yet: add some on the Documents page.")
        )
        return
    items = load_golden(settings, kb)
    _golden_editor(settings, items)
    _drafts(settings)
    _evaluate(settings, items)
    render_results(settings)


def _notice(ok: bool, text: str) -> None:
    st.session_state[NOTICE_KEY] = (ok, text)


def _bump() -> int:
    st.session_state[ROUND_KEY] = st.session_state.get(ROUND_KEY, 0) + 1
    return int(st.session_state[ROUND_KEY])


def rows_to_items(rows: list[dict[str, Any]]) -> list[GoldenItem]:
    """Editor rows -> items; blank rows are dropped, a row without a question is refused."""
    items = []
    for n, row in enumerate(rows, start=1):
        values = {c: str(row.get(c) or "").strip() for c in COLUMNS}
        if not any(values.values()):
            continue
        if not values["question"]:
            raise GoldenSetError(f"row {n}: the question is empty")
        items.append(GoldenItem(**values))
    return items


def _golden_editor(settings: Settings, items: list[GoldenItem]) -> None:
    round_no = st.session_state.get(ROUND_KEY, 0)
    st.markdown(f"**Golden set** · {len(items)} question{'s' if len(items) != 1 else ''}")
    frame = pd.DataFrame([i.model_dump() for i in items], columns=COLUMNS)
    edited = st.data_editor(
        frame,
        num_rows="dynamic",
        width="stretch",
        hide_index=True,
        key=f"golden-{settings.kb}-{round_no}",
        column_config={
            # widths that keep all three headers whole at 1280 px; details are in the tooltips
            "question": st.column_config.TextColumn("Question", required=True, width=340),
            "expected": st.column_config.TextColumn(
                "Expected answer", width=170, help="Empty = the documents do not say."
            ),
            "source": st.column_config.TextColumn(
                "Source file",
                width=140,
                help="The file the answer should cite (optional), e.g. lighthouse.md.",
            ),
        },
    )
    save, download = st.columns([1, 3], vertical_alignment="center")
    if save.button("Save set", key="golden-save", icon=":material/save:"):
        try:
            new = rows_to_items(edited.to_dict("records"))
        except (GoldenSetError, ValueError) as exc:
            st.error(as_text(f"Not saved: {exc}"))
        else:
            save_golden(settings, settings.kb, new)
            _notice(True, f"Saved {len(new)} questions.")
            _bump()
            st.rerun()
    download.download_button(
        "Download as CSV",
        to_csv(items),
        file_name=f"{settings.kb}-golden.csv",
        mime="text/csv",
        on_click="ignore",
        disabled=not items,
    )
    upload = st.file_uploader(
        "Import a golden set (CSV or JSONL; replaces the set above)",
        type=["csv", "jsonl", "json"],
        key=f"golden-import-{round_no}",
        help="Columns: question, expected, source (optional). At most 500 questions, 2 MB.",
    )
    if upload is not None:
        try:
            imported = parse_golden(upload.name, upload.getvalue())
        except GoldenSetError as exc:
            _notice(False, f"Import refused: {exc}")
        else:
            save_golden(settings, settings.kb, imported)
            _notice(True, f"Imported {len(imported)} questions from {upload.name}.")
        _bump()
        st.rerun()


def _drafts(settings: Settings) -> None:
    with st.expander("Draft questions with the model", icon=":material/auto_awesome:"):
        st.caption("The model proposes questions from your documents; accept, edit or drop each.")
        left, right = st.columns([1, 2], vertical_alignment="bottom")
        count = left.number_input("How many", min_value=1, max_value=10, value=3, key="draft-n")
        if right.button("Draft questions", key="draft-go", icon=":material/edit_note:"):
            from eval.golden_draft import draft_candidates

            with st.spinner("Drafting…"):
                try:
                    kb = state.knowledge_base(settings)
                    found = draft_candidates(
                        kb, state.llm(settings), int(count), random.randrange(10**6)
                    )
                except (RagError, Exception) as exc:  # noqa: BLE001 - show it, keep the page
                    st.error(as_text(f"Drafting failed: {exc}"))
                    found = []
            drafts = [
                {"question": c.question, "answer": c.answer, "source": c.source} for c in found
            ]
            st.session_state[DRAFTS_KEY] = drafts
            if not drafts:
                st.caption("The model gave no usable question this time; try again.")
        for i, draft in enumerate(st.session_state.get(DRAFTS_KEY, [])):
            _draft_card(settings, i, draft)


def _draft_card(settings: Settings, i: int, draft: dict[str, str]) -> None:
    with st.container(border=True):
        question = st.text_input(
            "Question", draft["question"], key=f"draft-q-{i}-{draft['question']}"
        )
        answer = st.text_input(
            "Expected answer", draft["answer"], key=f"draft-a-{i}-{draft['question']}"
        )
        st.caption(as_text(f"from {draft['source']}"))
        accept, drop = st.columns(2)
        if accept.button("Accept", key=f"draft-accept-{i}", icon=":material/check:"):
            try:
                item = GoldenItem(question=question, expected=answer, source=draft["source"])
            except ValueError as exc:
                st.error(as_text(f"Not added: {exc}"))
                return
            save_golden(settings, settings.kb, [*load_golden(settings, settings.kb), item])
            _drop(i)
            _notice(True, "Added the question to the golden set.")
            _bump()
            st.rerun()
        if drop.button("Drop", key=f"draft-drop-{i}", icon=":material/close:"):
            _drop(i)
            st.rerun()


def _drop(i: int) -> None:
    drafts = list(st.session_state.get(DRAFTS_KEY, []))
    drafts.pop(i)
    st.session_state[DRAFTS_KEY] = drafts


def _job_key(settings: Settings) -> str:
    return f"{settings.root}|{settings.kb}"


def _evaluate(settings: Settings, items: list[GoldenItem]) -> None:
    key = _job_key(settings)
    busy = quality_jobs.running(key)
    if st.button(
        "Evaluate",
        key="evaluate",
        type="primary",
        icon=":material/play_arrow:",
        disabled=busy or not items,
        help="Ask every question of the golden set now, in the background.",
    ):
        try:
            kb, llm = state.knowledge_base(settings), state.llm(settings)
            quality_jobs.start(
                key, lambda progress: run_golden(items, kb, settings, llm=llm, progress=progress)
            )
        except (RagError, RuntimeError) as exc:
            st.error(as_text(str(exc)))
    if quality_jobs.current(key) is not None:
        _progress(key)


@st.fragment(run_every=1.0)
def _progress(key: str) -> None:
    job = quality_jobs.current(key)
    if job is None:
        return
    if not job.finished:
        st.progress(job.fraction, text=f"Evaluating… {job.done}/{job.total} questions")
        return
    if job.error:
        _notice(False, f"Evaluation failed: {job.error}")
    elif job.summary:
        _notice(True, f"Evaluated {job.summary['questions']} questions.")
    quality_jobs.forget(key)
    st.rerun(scope="app")
