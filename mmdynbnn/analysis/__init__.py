"""Cost accounting: counters for mmengine's complexity analysis and a per-layer summary."""
from .counters import register_complexity_handles
from .from_config import build_model_from_config, summarize_config
from .summary import LayerCost, ModelSummary, summarize

__all__ = ['build_model_from_config', 'summarize_config', 'LayerCost', 'ModelSummary', 'register_complexity_handles', 'summarize']
