"""Search over what the pipeline found: tracks by meaning and by words, incidents and summaries, fused by
reciprocal rank; and answers built from the hits. The review service and the command line both call
``Searcher``; the modules below it are its parts:

- ``filters``: the filters as SQL tests, and the videos they leave;
- ``retrievers``: tracks by vector (exact, by descriptions, or through the HNSW graph) and by full text;
- ``tracks`` and ``events``: each side's search, fused into hits;
- ``fusion``: reciprocal rank fusion and the merge of both sides;
- ``searcher``: both sides at once, and grounded answers.
"""

from video_analysis.search.events import EventHit, incident_similarity, search_events
from video_analysis.search.filters import SearchFilters
from video_analysis.search.searcher import RememberingEmbedder, Searcher
from video_analysis.search.tracks import SearchHit, search, similar_tracks

__all__ = ["EventHit", "RememberingEmbedder", "SearchFilters", "SearchHit", "Searcher", "incident_similarity",
           "search", "search_events", "similar_tracks"]
