"""Measuring what the pipeline says against hand-labelled truth (MOTChallenge sequences)."""
