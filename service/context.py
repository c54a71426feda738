"""What the review service holds once (the database pool, the store, the models) and what every area of it
shares: hits as the API returns them, answers, the slots that bound work in flight."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import quote, urlencode

from video_analysis.runtime.disk import DiskFloor
from video_analysis.runtime.object_store import ObjectStore
from video_analysis.search import EventHit, Searcher, SearchFilters, SearchHit
from video_analysis.store import catalog

MAX_QUERY_CHARS = 300
MAX_LIMIT = 100


@dataclass(kw_only=True)
class ServiceContext(Searcher):
    """What the service needs, loaded once: a searcher (the pool, the models, the floors), and the store it
    serves footage from, the answer writer, and the bounds on work in flight."""

    store: ObjectStore
    answer_writer: object | None = None  # a language model with write_answer(question, facts) (full profile)
    answer_writer_name: str | None = None
    writer_lock: threading.Lock = field(default_factory=threading.Lock)
    dagster_url: str = "http://127.0.0.1:3000"
    # at most this many answers and searches at once; beyond them a request gets 429 (Settings)
    max_answers: int = 2
    max_searches: int = 8
    disk_floor: DiskFloor = field(default_factory=DiskFloor)  # the storage view's days left count to it

    @property
    def searcher(self) -> Searcher:
        return self


def _video_path(partition_key: str) -> str:
    return f"/api/videos/{quote(partition_key, safe='/@~')}"


def _hit(hit: SearchHit, ctx: ServiceContext) -> dict:
    base = _video_path(hit.partition_key)
    dagster = f"{ctx.dagster_url.rstrip('/')}/assets/tracks?{urlencode({'partition': hit.partition_key})}"
    return {**hit.as_dict(),
            "thumbnail_url": f"{base}/tracks/{hit.track_id}/thumbnail.jpg" if hit.has_thumbnail
                             else f"{base}/thumbnail.jpg",
            "clip_url": f"{base}/video#t={hit.start_s}", "dagster_url": dagster,
            "similar_url": f"/api/similar/{quote(hit.partition_key, safe='/@~')}/{hit.track_id}"}


def _event(hit: EventHit, ctx: ServiceContext) -> dict:
    base = _video_path(hit.partition_key)
    thumbnail = (f"{base}/tracks/{hit.track_ids[0]}/thumbnail.jpg" if hit.track_ids
                 else f"{base}/thumbnail.jpg")
    dagster = f"{ctx.dagster_url.rstrip('/')}/assets/summaries?{urlencode({'partition': hit.partition_key})}"
    return {**hit.as_dict(), "thumbnail_url": thumbnail, "clip_url": f"{base}/video#t={hit.start_s}",
            "dagster_url": dagster}


def _utc(moment: datetime | None) -> datetime | None:
    """A time without a zone is UTC, as everywhere in reelgraph (keys, the CLI)."""
    return moment.replace(tzinfo=timezone.utc) if moment is not None and moment.tzinfo is None else moment


ARCHIVE_CLASSES = ("GLACIER", "DEEP_ARCHIVE")  # S3 classes read only after a restore
NOTHING_MATCHES = "nothing matches: nothing found is close enough in meaning or shares its words"


def find(ctx: ServiceContext, q: str, filters: SearchFilters, kind: str | None = None, limit: int = 20) -> list[dict]:
    """Tracks, incidents and summaries matching ``q``, best first, as the API returns them: where to see each,
    and where its footage is."""
    hits = ctx.searcher.find(q, filters, kind, limit)
    return _with_footage(ctx, [_hit(h, ctx) if h.kind == "track" else _event(h, ctx) for h in hits])


def _footage_note(state: str, at: datetime | None) -> str | None:
    if state != "expired":
        return None
    return f"the footage was removed by retention{f' on {at.date().isoformat()}' if at else ''}; its facts remain"


def _with_footage(ctx: ServiceContext, hits: list[dict]) -> list[dict]:
    """Each hit says where its footage is; one whose footage expired has no clip to play, and says why."""
    if not hits:
        return hits
    with ctx.database.session() as conn:
        states = catalog.footage_states(conn, {hit["partition_key"] for hit in hits})
    for hit in hits:
        state, at = states.get(hit["partition_key"], ("hot", None))
        hit["footage"] = state
        if state == "expired":
            hit["clip_url"], hit["footage_note"] = None, _footage_note(state, at)
    _with_scenes(ctx, [hit for hit in hits if hit["kind"] == "incident"])
    return hits


def _with_scenes(ctx: ServiceContext, incidents: list[dict]) -> None:
    """An incident's card shows its scene (the whole frame, its tracks boxed) where one was kept."""
    if not incidents:
        return
    with ctx.database.session() as conn:
        rows = conn.execute("SELECT partition_key, incident_type, start_t, track_ids, scene FROM scene_frames "
                            "WHERE partition_key = ANY(%s)", (list({hit["partition_key"] for hit in incidents}),))
        scenes = {(key, kind, round(start, 2), tuple(tracks)): scene for key, kind, start, tracks, scene in rows}
    for hit in incidents:
        scene = scenes.get((hit["partition_key"], hit["incident_type"], round(hit["start_s"], 2),
                            tuple(hit["track_ids"])))
        if scene is not None:
            hit["thumbnail_url"] = f"{_video_path(hit['partition_key'])}/incidents/{scene}/scene.jpg"
            hit["scene_url"] = hit["thumbnail_url"]


def answer(ctx: ServiceContext, question: str, filters: SearchFilters, facts: int = 5) -> dict:
    """A grounded answer: built from the best few hits only, every sentence citing its video and time."""
    writer = ctx.answer_writer.write_answer if ctx.answer_writer is not None else None
    phraser = getattr(ctx.answer_writer, "phrase_query", None)
    found = ctx.searcher.answer(question, filters, writer, ctx.answer_writer_name or "language model", facts,
                                writer_lock=ctx.writer_lock, phraser=phraser)
    with ctx.database.session() as conn:
        states = catalog.footage_states(conn, {citation.partition_key for citation in found.citations})
    expired = {key: _footage_note(state, at) for key, (state, at) in states.items() if state == "expired"}
    return {"question": question, "answer": found.text, "generator": found.generator, "note": found.note,
            "citations": [{**citation.__dict__, "clip_url": None if citation.partition_key in expired
                           else f"{_video_path(citation.partition_key)}/video#t={citation.start_s}",
                           "footage_note": expired.get(citation.partition_key)}
                          for citation in found.citations]}


class Busy(Exception):
    """More requests of a kind than the service serves at once."""


class Slots:
    """At most ``size`` requests of one kind at once; one more is refused at once (429), not queued, so a
    burst of slow requests cannot take every worker thread from health checks, thumbnails and the page."""

    def __init__(self, size: int, what: str):
        self._free, self.what = threading.BoundedSemaphore(max(1, size)), what

    def __enter__(self):
        if not self._free.acquire(blocking=False):
            raise Busy(self.what)
        return self

    def __exit__(self, *_):
        self._free.release()
