"""Generic (framework-neutral) models, registered in mmengine's root ``MODELS``."""
from .backbones import NASBNN, NASBNNSuperNet, export_static, export_static_state_dict

__all__ = ['NASBNN', 'NASBNNSuperNet', 'export_static', 'export_static_state_dict']
