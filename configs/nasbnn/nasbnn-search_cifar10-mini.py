# Evolutionary search (docs/search.md) over the CIFAR supernet of nasbnn-supernet_bi-teacher_cifar10-mini.py
# on the bundled sample data/cifar10_mini (30 training images per class: 5 per class are held out as the
# fitness set, 64 others recalibrate BN). Small settings for a demo; scale population/generations up for a
# real CIFAR-10 copy (--cfg-options train_dataloader.dataset.data_root=/data/cifar10 ...).
#   python tools/nas/search.py configs/nasbnn/nasbnn-search_cifar10-mini.py SUPERNET.pth --work-dir DIR
_base_ = ['./nasbnn-supernet_bi-teacher_cifar10-mini.py']

search = dict(
    ops_window=(None, None),  # M OPs (analytic, 32x32, 10 classes); the space spans 0.118M-0.803M
    population=16,
    generations=3,            # rounds after the initial population (generations 0..3)
    num_mutation=8,
    num_crossover=8,
    mutation_prob=0.2,
    holdout=5,                # images per class held out of the training set (fitness set)
    calib_images=64,          # other training images for BN recalibration
    calib_batch_size=32,
    seed=0,
    cache_holdout=True,       # 50 images: keep them preprocessed in memory
    parents='bucket',         # breed from the best subnet of every OPs bucket, as the reference
    parent_bucket=None)       # None: 1/80 of the searched range = 0.0086M here (the reference's 2M of [20, 180]M)

# What the export step builds on (tools/nas/search.py --export-ops/--export-index).
search_export = dict(
    finetune_config='{{ fileDirname }}/nasbnn-subnet_finetune_cifar10-mini.py',
    detection_config='{{ fileDirname }}/retinanet_nasbnn-smallest_fpn_coco-mini.py')
