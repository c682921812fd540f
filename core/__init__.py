"""Digit Lab's engine: datasets, preprocessing, training and evaluation. No Streamlit here."""
