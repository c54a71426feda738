"""One search over everything: tracks and events side by side, merged by fused score; and answers built from
the best few hits, every sentence cited. What the review service and the command line both call."""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from video_analysis.events.answers import Answer, grounded_answer
from video_analysis.search.events import EventHit, search_events
from video_analysis.search.filters import SearchFilters
from video_analysis.search.fusion import merged
from video_analysis.search.questions import counted
from video_analysis.search.tracks import SearchHit, search


class RememberingEmbedder:
    """A text embedder with a small memory: a query embedded for tracks is not embedded again for events,
    and the sentences that say what each incident type means are embedded once."""

    def __init__(self, embedder, size: int = 512):
        self._embedder, self._size = embedder, size
        self._memory: OrderedDict[tuple[str, ...], object] = OrderedDict()
        self._lock = threading.Lock()  # requests run on a thread pool; the model is called one at a time

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    def embed(self, texts):
        key = tuple(texts)
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
            vectors = self._embedder.embed(list(texts))
            self._memory[key] = vectors
            if len(self._memory) > self._size:
                self._memory.popitem(last=False)
            return vectors

    def embed_images(self, images):
        with self._lock:
            return self._embedder.embed_images(images)


def remembering(embedder):
    return embedder if embedder is None or isinstance(embedder, RememberingEmbedder) else RememberingEmbedder(embedder)


@dataclass
class Searcher:
    """The models and floors a search needs, loaded once; ``database`` hands out a connection per side."""

    database: object  # Database or PooledDatabase: .session() gives a connection
    text_embedder: object
    text_model_name: str
    image_embedder: object | None = None
    image_model_name: str | None = None
    min_similarity: float | None = None
    min_summary_similarity: float | None = None
    min_incident_similarity: float | None = None
    # the second side of each search (events, while the caller's thread searches tracks)
    workers: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(8, "search"))
    site_timezone: str = "UTC"  # where "today" and "14:00" in a question are read

    def __post_init__(self):
        self.text_embedder = remembering(self.text_embedder)
        self.image_embedder = remembering(self.image_embedder)

    def find(self, query: str, filters: SearchFilters = SearchFilters(),  # noqa: B008 (frozen)
             kind: str | None = None, limit: int = 20) -> list[SearchHit | EventHit]:
        """Tracks, incidents and summaries matching ``query``, best first.

        Tracks and events are searched side by side, each on a connection of its own, so the database works
        on both at once: the search takes about as long as the slower side, not the sum. The query is embedded
        once, shared through the embedder's memory."""

        def tracks() -> list[SearchHit]:
            with self.database.session() as conn:
                return search(conn, query, self.text_embedder, self.text_model_name, filters, limit=limit,
                              image_embedder=self.image_embedder, image_model_name=self.image_model_name,
                              min_similarity=self.min_similarity)

        def events() -> list[EventHit]:
            with self.database.session() as conn:
                return search_events(conn, query, self.text_embedder, self.text_model_name, filters, limit=limit,
                                     min_incident_similarity=self.min_incident_similarity,
                                     min_summary_similarity=self.min_summary_similarity, kind=kind)

        sides = [side for side, kinds in ((tracks, (None, "track")), (events, (None, "incident", "summary")))
                 if kind in kinds]
        elsewhere = [self.workers.submit(side) for side in sides[1:]]
        try:
            hits = sides[0]() if sides else []
        finally:
            wait(elsewhere)  # a side that failed does not leave the other running on, unobserved
        for future in elsewhere:
            hits += future.result()
        return merged(hits, limit)

    def answer(self, question: str, filters: SearchFilters = SearchFilters(),  # noqa: B008 (frozen)
               writer=None, writer_name: str = "language model", facts: int = 5,
               writer_lock: threading.Lock | None = None, phraser=None) -> Answer:
        """A grounded answer from the best ``facts`` hits, every sentence citing its video and time. ``writer``
        (a language model's write_answer) phrases it when present, one generation at a time under
        ``writer_lock`` (a model is not shared across threads); ``phraser`` (its phrase_query) may read a counting
        question the rules do not."""
        def phrased(text: str, vocabulary: dict) -> str:
            with writer_lock or nullcontext():
                return phraser(text, vocabulary)

        with self.database.session() as conn:  # a counting question is counted exactly, not searched
            count = counted(conn, question, site=ZoneInfo(self.site_timezone), filters=filters,
                            phraser=phrased if phraser is not None else None)
        if count is not None:
            return count
        hits = [hit.as_dict() for hit in self.find(question, filters, limit=facts)]
        with writer_lock or nullcontext():
            return grounded_answer(question, hits, writer, writer_name)
