"""S3D clip features: the network (torchvision's layout), extraction at scale, the on-disk store.

Heavy pieces import lazily so that ``import videobert.features.store`` stays light.
"""

from .s3d import FEATURE_DIM, S3D
from .store import FeatureIndex, iter_video_features, load_feature_index, load_feature_matrix

__all__ = ["FEATURE_DIM", "FeatureIndex", "S3D", "iter_video_features", "load_feature_index", "load_feature_matrix"]
