# Static baseline of the matching Dy- config: route 1 alone (one backbone, one neck + head), mmdet's recipe.
_base_ = 'mmdet::yolox/yolox_s_8xb8-300e_coco.py'
