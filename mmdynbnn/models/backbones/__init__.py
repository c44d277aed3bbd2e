from .nasbnn_static import NASBNN, export_static, export_static_state_dict
from .nasbnn_supernet import NASBNNSuperNet

__all__ = ['NASBNN', 'NASBNNSuperNet', 'export_static', 'export_static_state_dict']
