"""NAS-BNN search space, subnets, sampling and analytic OPs (no torch modules here)."""
from .ops_count import OpsCount, subnet_ops
from .sampling import count_subnets, sample_subnet
from .space import CIFAR_SPACE, IMAGENET_SPACE, SearchSpace, StageSpace, StemSpace, build_space
from .subnet import BlockChoice, StageChoice, Subnet, build_subnet, load_subnet_file

__all__ = ['BlockChoice', 'CIFAR_SPACE', 'IMAGENET_SPACE', 'OpsCount', 'SearchSpace', 'StageChoice',
           'StageSpace', 'StemSpace', 'Subnet', 'build_space', 'build_subnet', 'count_subnets',
           'load_subnet_file', 'sample_subnet', 'subnet_ops']
