"""Routers for dynamic networks (generic, mmengine root registry)."""
from .adaptive_router import AdaptiveRouter
from .router_loss import DynamicRouterLoss, StreamingMedian, router_loss
from .routing import hard_mask

__all__ = ['AdaptiveRouter', 'DynamicRouterLoss', 'StreamingMedian', 'router_loss', 'hard_mask']
