"""UI entry script for `streamlit run` (started by `rag ui`): page frame, sidebar, navigation."""

from pathlib import Path

import streamlit as st

from rag_app.ui.sidebar import render_sidebar

VIEWS = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title="rag_app", page_icon=":material/menu_book:", layout="centered")
page = st.navigation(
    [
        st.Page(VIEWS / "chat.py", title="Chat", icon=":material/chat:", default=True),
        st.Page(VIEWS / "documents.py", title="Documents", icon=":material/description:"),
        st.Page(VIEWS / "quality.py", title="Quality", icon=":material/fact_check:"),
    ]
)
render_sidebar()
page.run()
