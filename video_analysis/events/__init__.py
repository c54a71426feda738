"""Rule-based understanding of tracks: incidents, safety score, summary text."""
