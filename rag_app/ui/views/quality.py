"""Quality page script (run by st.navigation); the logic lives in rag_app.ui.quality."""

from rag_app.ui.quality import render_quality_page

render_quality_page()
