"""Streamlit UI: a thin browser front end (chat and documents pages) over the rag_app functions."""
