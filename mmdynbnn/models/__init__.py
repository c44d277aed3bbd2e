"""Generic model components (registered in mmengine's root ``MODELS``)."""
from .routers import AdaptiveRouter, DynamicRouterLoss, StreamingMedian  # noqa: F401
