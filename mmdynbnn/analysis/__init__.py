"""Cost accounting: counters for mmengine's complexity analysis and a per-layer summary."""
from .counters import register_complexity_handles
from .summary import LayerCost, ModelSummary, summarize

__all__ = ['LayerCost', 'ModelSummary', 'register_complexity_handles', 'summarize']
