"""One module per stage; every asset is thin and delegates the work to video_analysis."""

from assets.attributes import attributes
from assets.detections import detections
from assets.embeddings import embeddings
from assets.raw_video import raw_video
from assets.summaries import summaries
from assets.tracks import tracks

ALL_ASSETS = [raw_video, detections, tracks, attributes, embeddings, summaries]

__all__ = ["ALL_ASSETS", "attributes", "detections", "embeddings", "raw_video", "summaries", "tracks"]
