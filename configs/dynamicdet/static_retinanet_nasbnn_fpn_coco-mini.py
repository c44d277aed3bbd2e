# Static NAS-BNN RetinaNet (route 1 alone: smallest subnet, one FPN + RetinaHead) on the bundled data,
# from scratch: the baseline of dy-retinanet_nasbnn_fpn_coco-mini_step1.py (same data, schedule and head).
_base_ = './dy-retinanet_nasbnn_fpn_coco-mini_step1.py'

model = dict(
    _delete_=True,
    type='RetinaNet',
    data_preprocessor={{_base_.model.data_preprocessor}},
    backbone={{_base_.model.backbone.backbone}},
    neck={{_base_.model.neck}},
    bbox_head={{_base_.model.bbox_head}},
    train_cfg={{_base_.model.train_cfg}},
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
                  max_per_img=100))
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=False)
val_evaluator = dict(_delete_=True, type='CocoMetric', metric='bbox', format_only=False,
                     ann_file='{{ fileDirname }}/../../data/coco_mini/annotations/instances_val.json')
test_evaluator = val_evaluator
