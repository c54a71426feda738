"""One module per stage; every asset is thin and delegates the work to video_analysis."""

from assets.attributes import attributes
from assets.detections import detections
from assets.embeddings import embeddings
from assets.raw_video import raw_video
from assets.reports import camera_daily_report
from assets.retention import retention
from assets.summaries import summaries
from assets.tracks import tracks

# The per-video chain, in order; `reelgraph process` and the upload job run exactly these.
VIDEO_STAGES = [raw_video, detections, tracks, attributes, embeddings, summaries]
ALL_ASSETS = [*VIDEO_STAGES, camera_daily_report, retention]

__all__ = [
    "ALL_ASSETS", "VIDEO_STAGES", "attributes", "camera_daily_report", "detections", "embeddings", "raw_video",
    "retention", "summaries", "tracks",
]
