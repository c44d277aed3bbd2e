# Evolutionary search over the ImageNet supernet with the reference settings of docs/nasbnn.md §5:
# OPs window [20M, 180M], initial population 512 (biggest and smallest included when inside the window),
# then 20 generations of 128 mutations (p = 0.2) + 128 crossovers bred from the best subnet of every 2M-OPs
# bucket, fitness = top-1 on 50 training images per class (held out) after BN recalibration (10 batches
# of 256 training images). Candidates are spread over the ranks:
#   torchrun --nproc_per_node 8 tools/nas/search.py configs/nasbnn/nasbnn-search_8xb64_in1k.py SUPERNET.pth \
#       --launcher pytorch --work-dir work_dirs/nasbnn_search_in1k \
#       --cfg-options train_dataloader.dataset.data_root=/data/imagenet val_dataloader.dataset.data_root=/data/imagenet
_base_ = ['./nasbnn-supernet_bi-teacher_8xb64_in1k.py']

search = dict(
    ops_window=(20, 180),     # M OPs at 224x224, 1000 classes (the space spans 20.77M-331.81M)
    population=512,
    generations=20,           # rounds after the initial population (generations 0..20, as the reference)
    num_mutation=128,
    num_crossover=128,
    mutation_prob=0.2,
    holdout=50,               # 50 images per class = 50k held-out training images
    calib_images=2560,        # 10 batches of 256, as the reference
    calib_batch_size=256,
    seed=0,
    cache_holdout=False,
    ops_bucket=2,             # log the best top-1 per 2M-OPs bucket
    parents='bucket',         # breed from the best subnet of every parent_bucket-wide OPs bucket
    parent_bucket=2)          # M OPs, the reference's

search_export = dict(
    finetune_config='{{ fileDirname }}/nasbnn-subnet_finetune_8xb64_in1k.py',
    detection_config='{{ fileDirname }}/retinanet_nasbnn-smallest_fpn_coco-mini.py')
