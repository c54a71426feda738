"""One module per stage; every asset is thin and delegates the work to video_analysis."""

from assets.detections import detections
from assets.raw_video import raw_video
from assets.tracks import tracks

ALL_ASSETS = [raw_video, detections, tracks]

__all__ = ["ALL_ASSETS", "detections", "raw_video", "tracks"]
