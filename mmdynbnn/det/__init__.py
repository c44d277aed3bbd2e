"""DynamicDet for mmdet 3.x (imports mmdet; use ``custom_imports=dict(imports=['mmdynbnn', 'mmdynbnn.det'])``)."""
from .cascaded_backbone import (BackboneFamily, CascadedDualBackbone, register_backbone_family,
                                supported_families)
from .dynamic_detector import DynamicDetector, check_threshold
from .dynamic_head import DynamicDetHead
from .hooks import DynamicDetStep2Hook
from .metrics import RouteRatioMetric

__all__ = ['BackboneFamily', 'CascadedDualBackbone', 'register_backbone_family', 'supported_families',
           'DynamicDetector', 'DynamicDetHead', 'DynamicDetStep2Hook', 'RouteRatioMetric', 'check_threshold']
