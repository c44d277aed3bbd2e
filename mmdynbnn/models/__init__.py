"""Generic (framework-neutral) models, registered in mmengine's root ``MODELS``."""
from .backbones import BinaryResNet, NASBNN, NASBNNSuperNet, export_static, export_static_state_dict
from .routers import AdaptiveRouter, DynamicRouterLoss, StreamingMedian

__all__ = ['BinaryResNet', 'NASBNN', 'NASBNNSuperNet', 'export_static', 'export_static_state_dict', 'AdaptiveRouter',
           'DynamicRouterLoss', 'StreamingMedian']
