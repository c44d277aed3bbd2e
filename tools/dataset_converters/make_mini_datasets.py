"""Build the tiny real datasets bundled in ``data/`` from the project's shared copies.

``data/coco_mini``: the first images of coco128/train2017 that have boxes, resized so the long side is at
most ``--max-side`` px, boxes rescaled; split into ``train`` and ``val``. COCO licences and per-image Flickr
licence ids are kept in both JSON files. ``data/cifar10_mini``: the first N images per class of the
CIFAR-10 subset (folder per class, loadable with mmpretrain's ``CustomDataset``).

Example::

    python tools/dataset_converters/make_mini_datasets.py --src ../shared/data --dst data
"""
import argparse
import json
import shutil
from pathlib import Path

from PIL import Image


def _resize_split(src_img_dir: Path, dst_img_dir: Path, images: list, anns_by_img: dict, max_side: int):
    dst_img_dir.mkdir(parents=True, exist_ok=True)
    out_images, out_anns = [], []
    for img in images:
        im = Image.open(src_img_dir / img['file_name']).convert('RGB')
        scale = min(1.0, max_side / max(im.size))
        new_w, new_h = round(im.width * scale), round(im.height * scale)
        im.resize((new_w, new_h), Image.BILINEAR).save(dst_img_dir / img['file_name'], quality=90)
        sx, sy = new_w / im.width, new_h / im.height
        keep = {k: img[k] for k in ('id', 'file_name', 'license', 'flickr_url', 'coco_url') if k in img}
        out_images.append({**keep, 'width': new_w, 'height': new_h})
        for ann in anns_by_img.get(img['id'], []):
            x, y, w, h = ann['bbox']
            bbox = [round(x * sx, 2), round(y * sy, 2), round(w * sx, 2), round(h * sy, 2)]
            out_anns.append(dict(id=ann['id'], image_id=ann['image_id'], category_id=ann['category_id'],
                                 bbox=bbox, area=round(bbox[2] * bbox[3], 2), iscrowd=ann['iscrowd']))
    return out_images, out_anns


def make_coco_mini(src: Path, dst: Path, num_train: int, num_val: int, max_side: int) -> None:
    coco = json.loads((src / 'annotations' / 'instances_train2017.json').read_text())
    anns_by_img: dict = {}
    for ann in coco['annotations']:
        anns_by_img.setdefault(ann['image_id'], []).append(ann)
    with_boxes = [im for im in coco['images'] if any(not a['iscrowd'] for a in anns_by_img.get(im['id'], []))]
    splits = {'train': with_boxes[:num_train], 'val': with_boxes[num_train:num_train + num_val]}
    (dst / 'annotations').mkdir(parents=True, exist_ok=True)
    for split, images in splits.items():
        out_images, out_anns = _resize_split(src / 'train2017', dst / split, images, anns_by_img, max_side)
        info = dict(coco['info'], description=f'coco_mini {split}: {len(images)} images of COCO train2017, '
                    f'long side <= {max_side} px, boxes rescaled (mmdynbnn demo/test data)')
        out = dict(info=info, licenses=coco['licenses'], categories=coco['categories'],
                   images=out_images, annotations=out_anns)
        (dst / 'annotations' / f'instances_{split}.json').write_text(json.dumps(out))
        print(f'coco_mini/{split}: {len(out_images)} images, {len(out_anns)} boxes')


def make_cifar_mini(src: Path, dst: Path, per_class: dict) -> None:
    for split, n in per_class.items():
        for cls_dir in sorted((src / split).iterdir()):
            out = dst / split / cls_dir.name
            out.mkdir(parents=True, exist_ok=True)
            for f in sorted(cls_dir.glob('*.jpg'))[:n]:
                shutil.copyfile(f, out / f.name)
        print(f'cifar10_mini/{split}: {n} images per class')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--src', default='../shared/data', help='folder holding coco128/ and cifar10_subset/')
    parser.add_argument('--dst', default='data', help='output folder')
    parser.add_argument('--coco-train', type=int, default=24)
    parser.add_argument('--coco-val', type=int, default=16)
    parser.add_argument('--max-side', type=int, default=320)
    parser.add_argument('--cifar-train', type=int, default=30, help='images per class')
    parser.add_argument('--cifar-test', type=int, default=10, help='images per class')
    args = parser.parse_args()
    src, dst = Path(args.src), Path(args.dst)
    make_coco_mini(src / 'coco128', dst / 'coco_mini', args.coco_train, args.coco_val, args.max_side)
    make_cifar_mini(src / 'cifar10_subset', dst / 'cifar10_mini',
                    {'train': args.cifar_train, 'test': args.cifar_test})


if __name__ == '__main__':
    main()
