from .binary_resnet import BinaryResNet
from .nasbnn_static import NASBNN, export_static, export_static_state_dict
from .nasbnn_supernet import NASBNNSuperNet

__all__ = ['BinaryResNet', 'NASBNN', 'NASBNNSuperNet', 'export_static', 'export_static_state_dict']
