"""Documents page script (run by st.navigation); the logic lives in rag_app.ui.documents."""

from rag_app.ui.documents import render_documents_page

render_documents_page()
