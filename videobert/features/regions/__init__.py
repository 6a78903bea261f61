"""Per-clip regions (boxes, features, class distributions) beside the S3D features: ActBERT's region stream."""

from videobert.features.regions.detector import Detections, Detector, extract_regions
from videobert.features.regions.store import VideoRegions, read_video_regions, region_locations, write_video_regions

__all__ = ["Detections", "Detector", "VideoRegions", "extract_regions", "read_video_regions", "region_locations",
           "write_video_regions"]
