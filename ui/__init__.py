"""Streamlit-side helpers shared by the pages: session keys, cached loaders, image galleries."""
