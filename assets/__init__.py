"""One module per stage; every asset is thin and delegates the work to video_analysis."""

from assets.raw_video import raw_video

ALL_ASSETS = [raw_video]

__all__ = ["ALL_ASSETS", "raw_video"]
