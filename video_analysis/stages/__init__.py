"""One plain per-video function per stage: `run(...) -> StageResult`.

Each stage reads its inputs from the store, computes with `vision`/`events`, and writes its rows and its
`stage_runs` record in one transaction. The Dagster assets, `reelgraph process` (through Dagster) and the
benchmarks all call these same functions.

| stage | module | reads | writes |
|---|---|---|---|
| raw_video | `ingest` | the object | `videos` (probe) |
| detections | `detect` | the video file | `detections` |
| tracks | `track` | detections | `tracks` |
| attributes | `describe` | tracks | `track_attributes` |
| embeddings | `embed` | descriptions, crops | `embeddings` |
| summaries | `summarize` | tracks, attributes | `summaries` |
"""

from __future__ import annotations

from dataclasses import dataclass, field

from video_analysis.runtime.object_store import ArchivedFootageError, ObjectChangedError
from video_analysis.store.catalog import UnknownVideoError
from video_analysis.store.quality import Finding
from video_analysis.vision.probe import VideoProbeError
from video_analysis.vision.video_streams import DecodeError

STAGES = ("raw_video", "detections", "tracks", "attributes", "embeddings", "summaries")


class MissingUpstreamError(LookupError):
    """The stage this one reads from has not run for the video."""


# A video's own problem: the rest of a batch is still worth running, and a retry would fail the same way.
# Store outages and refused access are not among them: they fail the run (retried), never the video.
VIDEO_FAULTS = (UnknownVideoError, ObjectChangedError, ArchivedFootageError, VideoProbeError, DecodeError,
                MissingUpstreamError)


@dataclass
class StageResult:
    """What one video's pass through a stage produced.

    ``metadata`` holds plain values for the UI (numbers, text, dicts and lists; ``bytes`` are JPEG images).
    """

    rows: int
    metadata: dict = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
