"""Checks of classification datasets that mmpretrain only warns about (duck-typed: no mmpretrain import)."""
import os.path as osp
from typing import Any


def check_every_class_has_samples(dataset: Any, role: str = 'training set') -> None:
    """Raise if a class of ``dataset.metainfo['classes']`` has no sample.

    mmpretrain's ``CustomDataset`` only logs a warning for an empty class folder; a search would then hold out
    and calibrate on a set missing that class and report accuracies over the others.

    Args:
        dataset: A dataset with ``metainfo['classes']`` and ``get_gt_labels()`` (mmpretrain's ``BaseDataset``).
        role: What the dataset is used for (in the message).

    Raises:
        ValueError: naming the classes and, for a folder-per-class dataset, their folders.
    """
    classes = list((getattr(dataset, 'metainfo', None) or {}).get('classes') or [])
    if not classes or not hasattr(dataset, 'get_gt_labels'):
        return
    present = {int(label) for label in dataset.get_gt_labels()}
    missing = [c for i, c in enumerate(classes) if i not in present]
    if not missing:
        return
    prefix = getattr(dataset, 'img_prefix', None)
    if prefix and not getattr(dataset, 'ann_file', None):  # folder per class
        where = ', '.join(osp.join(prefix, str(c)) for c in missing[:5]) + (' ...' if len(missing) > 5 else '')
        raise ValueError(f'{role}: {len(missing)} of {len(classes)} classes have no images; empty class folder(s): '
                         f'{where}. Put images in them or remove the class')
    source = getattr(dataset, 'ann_file', None) or prefix or type(dataset).__name__
    raise ValueError(f'{role}: {len(missing)} of {len(classes)} classes have no samples in {source} (e.g. '
                     f'{missing[:5]}); every class needs samples')
