# Static baseline of the matching Dy- config: route 1 alone (one backbone, one neck + head), mmdet's recipe.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
