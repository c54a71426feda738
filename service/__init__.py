"""The review service: search, the catalogue and the footage itself over HTTP, and a web page (`reelgraph serve`).

It reads what the pipeline wrote; it never writes. Models load once, when the service starts.
"""
