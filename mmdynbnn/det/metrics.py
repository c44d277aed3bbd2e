"""Reports how many images took each DynamicDet route during val/test."""
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric


@METRICS.register_module()
class RouteRatioMetric(BaseMetric):
    """``hard_ratio`` (share of images through route 2) and the mean router score, from the
    ``dynamic_route`` / ``router_score`` metainfo that ``DynamicDetector.predict`` writes.

    Example:
        >>> val_evaluator = [dict(type='CocoMetric', ann_file='...'), dict(type='RouteRatioMetric')]
    """

    default_prefix: Optional[str] = 'dynamic'

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'dynamic_route' not in sample:
                raise KeyError('RouteRatioMetric needs the predictions of a DynamicDetector '
                               '(no dynamic_route in the data sample)')
            self.results.append((int(sample['dynamic_route']), float(sample.get('router_score', float('nan')))))

    def compute_metrics(self, results: List) -> Dict[str, float]:
        routes = np.array([r for r, _ in results])
        scores = np.array([s for _, s in results])
        return dict(hard_ratio=float((routes == 2).mean()) if len(routes) else 0.0,
                    mean_score=float(np.nanmean(scores)) if np.isfinite(scores).any() else float('nan'),
                    num_images=len(results))
