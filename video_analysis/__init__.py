"""reelgraph's vision library: probing, object stores, database and (later) the analysis stages.

Plain Python with no Dagster import, so every function here is usable from a notebook or a script.
"""
