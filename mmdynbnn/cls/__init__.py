"""mmpretrain-specific NAS-BNN parts (import as ``custom_imports=dict(imports=['mmdynbnn', 'mmdynbnn.cls'])``)."""
import mmdynbnn  # noqa: F401  (registers the generic modules first)

from .bi_teacher import BiTeacherClassifier, soft_cross_entropy
from .export import export_classifier
from .heads import SlicedLinearClsHead

__all__ = ['BiTeacherClassifier', 'SlicedLinearClsHead', 'export_classifier', 'soft_cross_entropy']
