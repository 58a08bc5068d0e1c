"""Chat page script (run by st.navigation); the logic lives in rag_app.ui.chat."""

from rag_app.ui.chat import render_chat_page

render_chat_page()
