"""Does the binary ResNet learn? Float twin vs BinaryResNet vs the drop-in binary stock ResNet, one table.

    python benchmarks/bench_binary_resnet.py [--data-root ../shared/data/cifar10] [--test-dir DIR] \
        [--epochs 4] [--variants float,binary,dropin] [--work-dir work_dirs/bench_binary_resnet]

Each variant is an mmpretrain ``ImageClassifier`` built from its config (same widths, same head):

- ``float``:  ``configs/binary_resnet/binary-resnet18-w16-fp_1xb128_cifar10.py`` (the float twin),
- ``binary``: ``configs/binary_resnet/binary-resnet18-w16_1xb128_cifar10.py`` (BinaryResNet),
- ``dropin``: ``configs/binary_resnet/resnet18-w16-bconv_1xb128_cifar10.py`` (stock ResNet_CIFAR with
  ``conv_cfg=BinaryConv2d``).

All train for the same budget on the same data with the same recipe: the config's optimizer (Adam, lr 1e-3,
no weight decay, no clipping), a per-iteration cosine schedule to 0 over ``--epochs``, batch
``--batch-size``, RandomCrop(32, pad 4) + horizontal flip, the same seed (same initial batch order). Images
are decoded once (as mmpretrain's ``LoadImageFromFile`` does, BGR -> RGB) into memory, so the loop measures
the networks rather than JPEG decoding. The table gives, per variant: top-1 on ``--test-dir`` after the last
epoch, the L2 norm of the whole gradient at the first step (one identical real batch), and the wall time.

Resumable: after every epoch the variant's state (model, optimizer, RNG, epoch, history) is written
atomically to ``<work-dir>/<variant>.pth``; re-running the same command continues where it stopped.
With ``--export DIR`` the final weights are also written as mmengine checkpoints that the stock
mmpretrain ``test.py`` loads with the variant's config.
"""
import argparse
import copy
import hashlib
import math
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
VARIANTS = {
    'float': 'configs/binary_resnet/binary-resnet18-w16-fp_1xb128_cifar10.py',
    'binary': 'configs/binary_resnet/binary-resnet18-w16_1xb128_cifar10.py',
    'dropin': 'configs/binary_resnet/resnet18-w16-bconv_1xb128_cifar10.py',
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data-root', default=osp.join(REPO, '..', 'shared', 'data', 'cifar10'),
                   help='folder-per-class CIFAR-10 with train/ (and test/ unless --test-dir)')
    p.add_argument('--test-dir', default=None, help='test folder (folder per class); default <data-root>/test')
    p.add_argument('--epochs', type=int, default=4)
    p.add_argument('--batch-size', type=int, default=128)
    p.add_argument('--variants', default='float,binary,dropin',
                   help=f'comma-separated subset of {sorted(VARIANTS)}')
    p.add_argument('--max-train-per-class', type=int, default=None,
                   help='use only the first N training images of each class (quick runs, tests)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: torch default)')
    p.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs', 'bench_binary_resnet'))
    p.add_argument('--export', default=None, help='also write <DIR>/<variant>.pth mmengine checkpoints')
    p.add_argument('--log-interval', type=int, default=50, help='iterations between progress lines')
    p.add_argument('--out', default=None, help='write the results as JSON here (default <work-dir>/results.json)')
    args = p.parse_args(argv)
    names = [v.strip() for v in args.variants.split(',') if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if bad or not names:
        p.error(f'--variants: {bad or args.variants!r} not allowed; choose from {sorted(VARIANTS)}')
    args.variants = names
    for field in ('epochs', 'batch_size', 'log_interval'):
        if getattr(args, field) < 1:
            p.error(f'--{field.replace("_", "-")}={getattr(args, field)} must be >= 1')
    if args.max_train_per_class is not None and args.max_train_per_class < 1:
        p.error(f'--max-train-per-class={args.max_train_per_class} must be >= 1')
    args.train_dir = osp.join(args.data_root, 'train')
    args.test_dir = args.test_dir or osp.join(args.data_root, 'test')
    return args


def list_folder(root: str, field: str, limit=None) -> Tuple[List[str], List[Tuple[str, int]]]:
    """Classes (sorted sub-folders, as mmpretrain's CustomDataset) and (path, label) pairs; refuses a
    missing folder, a folder without classes and a class folder without images, naming it."""
    if not osp.isdir(root):
        raise SystemExit(f'{field}: {root!r} is not a folder (expected one sub-folder of images per class)')
    classes = sorted(d for d in os.listdir(root) if osp.isdir(osp.join(root, d)))
    if not classes:
        raise SystemExit(f'{field}: {root!r} has no class sub-folders')
    items = []
    for label, c in enumerate(classes):
        files = sorted(f for f in os.listdir(osp.join(root, c))
                       if f.lower().endswith(('.jpg', '.jpeg', '.png', '.bmp')))
        if not files:
            raise SystemExit(f'{field}: class folder {osp.join(root, c)!r} has no images; every class needs some')
        items += [(osp.join(root, c, f), label) for f in files[:limit]]
    return classes, items


def load_images(items: List[Tuple[str, int]], cache_dir: str, tag: str):
    """uint8 (N, 3, 32, 32) RGB and int64 labels, cached in ``cache_dir`` by the list of files."""
    import numpy as np
    import torch
    key = hashlib.sha256('\n'.join(f'{p}:{os.path.getsize(p)}:{l}' for p, l in items).encode()).hexdigest()[:16]
    path = osp.join(cache_dir, f'{tag}_{key}.npz')
    if osp.exists(path):
        with np.load(path) as z:
            return torch.from_numpy(z['x']), torch.from_numpy(z['y'])
    import mmcv
    x = np.empty((len(items), 3, 32, 32), np.uint8)
    for i, (p, _) in enumerate(items):
        img = mmcv.imread(p, channel_order='rgb')  # cv2 decode, as LoadImageFromFile + to_rgb
        if img is None or img.shape != (32, 32, 3):
            raise SystemExit(f'{p}: expected a 32x32 RGB image, got {None if img is None else img.shape}')
        x[i] = img.transpose(2, 0, 1)
    y = np.array([l for _, l in items], np.int64)
    from mmdynbnn.utils import atomic_path
    with atomic_path(path, suffix='.npz') as tmp:  # the suffix stops np.savez from appending one
        np.savez(tmp, x=x, y=y)
    return torch.from_numpy(x), torch.from_numpy(y)


def build_model(config: str):
    import torch
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    import mmdynbnn  # noqa: F401  (registers the plugin's modules)
    import mmpretrain.models  # noqa: F401
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, config))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    pre = cfg.data_preprocessor
    mean = torch.tensor(pre['mean']).view(1, 3, 1, 1)
    std = torch.tensor(pre['std']).view(1, 3, 1, 1)
    return model, cfg, mean, std


def augment(x, gen):
    """RandomCrop(32, padding=4) with zero padding of the raw image and a horizontal flip, per image."""
    import torch
    n = x.shape[0]
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    ox = torch.randint(0, 9, (n,), generator=gen)
    oy = torch.randint(0, 9, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    out = torch.empty_like(x)
    for i in range(n):
        img = padded[i, :, oy[i]:oy[i] + 32, ox[i]:ox[i] + 32]
        out[i] = img.flip(-1) if flip[i] else img
    return out


def logits_of(model, x):
    return model.head(model.extract_feat(x))


def evaluate(model, x_test, y_test, mean, std, batch: int = 250) -> float:
    import torch
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x_test), batch):
            x = (x_test[i:i + batch].float() - mean) / std
            correct += (logits_of(model, x).argmax(1) == y_test[i:i + batch]).sum().item()
    return 100.0 * correct / len(x_test)


def grad_norm(model) -> float:
    import torch
    norms = [p.grad.detach().norm() for p in model.parameters() if p.grad is not None]
    return float(torch.stack(norms).norm()) if norms else 0.0


def train_variant(name: str, args, data) -> Dict:
    import torch
    x_train, y_train, x_test, y_test = data
    from mmdynbnn.utils import atomic_torch_save, save_checkpoint
    state_path = osp.join(args.work_dir, f'{name}.pth')
    torch.manual_seed(args.seed)
    model, cfg, mean, std = build_model(VARIANTS[name])
    opt_cfg = dict(cfg.optim_wrapper.optimizer)
    if opt_cfg.pop('type') != 'Adam':
        raise SystemExit(f'{VARIANTS[name]}: the benchmark expects an Adam optimizer')
    optimizer = torch.optim.Adam(model.parameters(), **opt_cfg)
    base_lr = opt_cfg['lr']
    iters_per_epoch = math.ceil(len(x_train) / args.batch_size)
    total = iters_per_epoch * args.epochs
    rec = dict(variant=name, config=VARIANTS[name], epochs_done=0, history=[], train_seconds=0.0,
               params=sum(p.numel() for p in model.parameters()), threads=torch.get_num_threads())
    if osp.exists(state_path):
        state = torch.load(state_path, map_location='cpu', weights_only=False)  # our own file
        if state['epochs'] != args.epochs or state['batch_size'] != args.batch_size or \
                state['num_train'] != len(x_train):
            raise SystemExit(f'{state_path}: saved for epochs={state["epochs"]}, batch={state["batch_size"]}, '
                             f'{state["num_train"]} images; this run asks epochs={args.epochs}, '
                             f'batch={args.batch_size}, {len(x_train)} images. Use another --work-dir.')
        model.load_state_dict(state['model'])
        optimizer.load_state_dict(state['optimizer'])
        rec = state['record']
        print(f'[{name}] resumed after epoch {rec["epochs_done"]}/{args.epochs}', flush=True)
    # The first-step gradient: one identical real batch (first training images of every class) for all.
    if 'first_grad_norm' not in rec:
        g = torch.Generator().manual_seed(args.seed)
        idx = torch.randperm(len(x_train), generator=g)[:args.batch_size]
        probe = copy.deepcopy(model)
        probe.train()
        loss = torch.nn.functional.cross_entropy(
            logits_of(probe, (x_train[idx].float() - mean) / std), y_train[idx])
        loss.backward()
        rec['first_grad_norm'] = grad_norm(probe)
        rec['first_loss'] = float(loss)
        del probe
    for epoch in range(rec['epochs_done'], args.epochs):
        model.train()
        gen = torch.Generator().manual_seed(args.seed * 1000 + epoch)
        order = torch.randperm(len(x_train), generator=gen)
        start = time.time()
        run_loss = 0.0
        for it in range(iters_per_epoch):
            step = epoch * iters_per_epoch + it
            for group in optimizer.param_groups:
                group['lr'] = 0.5 * base_lr * (1 + math.cos(math.pi * step / total))
            idx = order[it * args.batch_size:(it + 1) * args.batch_size]
            x = (augment(x_train[idx], gen).float() - mean) / std
            loss = torch.nn.functional.cross_entropy(logits_of(model, x), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            run_loss += float(loss)
            if (it + 1) % args.log_interval == 0 or it + 1 == iters_per_epoch:
                el = time.time() - start
                print(f'[{name}] epoch {epoch + 1}/{args.epochs} iter {it + 1}/{iters_per_epoch} '
                      f'loss {run_loss / (it + 1):.3f} {(it + 1) * args.batch_size / el:.0f} img/s', flush=True)
        seconds = time.time() - start
        top1 = evaluate(model, x_test, y_test, mean, std)
        rec['train_seconds'] += seconds
        rec['epochs_done'] = epoch + 1
        rec['history'].append(dict(epoch=epoch + 1, loss=run_loss / iters_per_epoch, top1=top1,
                                   seconds=round(seconds, 1)))
        print(f'[{name}] epoch {epoch + 1}: top-1 {top1:.2f}% on {args.test_dir} ({seconds:.0f} s)', flush=True)
        atomic_torch_save(dict(model=model.state_dict(), optimizer=optimizer.state_dict(), record=rec,
                               epochs=args.epochs, batch_size=args.batch_size, num_train=len(x_train)),
                          state_path)
    rec['top1'] = evaluate(model, x_test, y_test, mean, std)
    if args.export:
        save_checkpoint(model.state_dict(), osp.join(args.export, f'{name}.pth'),
                        meta=dict(config=VARIANTS[name], epochs=args.epochs, top1=rec['top1'], test_dir=args.test_dir))
    return rec


def table(records: List[Dict]) -> str:
    by = {r['variant']: r for r in records}
    ref = by.get('float')
    lines = ['| variant | config | params | top-1 (%) | top-1 / float | first-step grad norm | '
             'grad norm / float | train time (s) | s / epoch |', '|' + '---|' * 9]
    for r in records:
        rel = f'{r["top1"] / ref["top1"]:.3f}' if ref and ref['top1'] > 0 else '-'
        grel = f'{r["first_grad_norm"] / ref["first_grad_norm"]:.2f}' if ref and ref['first_grad_norm'] else '-'
        lines.append(f'| {r["variant"]} | {osp.basename(r["config"])} | {r["params"] / 1e6:.3f}M | '
                     f'{r["top1"]:.2f} | {rel} | {r["first_grad_norm"]:.3g} | {grel} | '
                     f'{r["train_seconds"]:.0f} | {r["train_seconds"] / max(r["epochs_done"], 1):.0f} |')
    return '\n'.join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    train_classes, train_items = list_folder(args.train_dir, '--data-root (train/)', args.max_train_per_class)
    classes, test_items = list_folder(args.test_dir, '--test-dir')
    if classes != train_classes:
        raise SystemExit(f'--test-dir {args.test_dir!r} classes {classes} differ from the training classes '
                         f'{train_classes}')
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    os.makedirs(args.work_dir, exist_ok=True)
    print(f'loading {len(train_items)} training images from {args.train_dir} and {len(test_items)} test images '
          f'from {args.test_dir}', flush=True)
    data = (*load_images(train_items, args.work_dir, 'train'), *load_images(test_items, args.work_dir, 'test'))
    records = [train_variant(v, args, data) for v in args.variants]
    summary = dict(budget=dict(epochs=args.epochs, batch_size=args.batch_size, train_images=len(train_items),
                               test_images=len(test_items), test_dir=args.test_dir, seed=args.seed),
                   results=records)
    out = args.out or osp.join(args.work_dir, 'results.json')
    from mmdynbnn.utils import atomic_write_json
    atomic_write_json(summary, out)
    print(f'\nbudget: {args.epochs} epochs of {len(train_items)} images, batch {args.batch_size}, '
          f'threads per variant {[r.get("threads") for r in records]}; test: {len(test_items)} images in {args.test_dir}')
    print(table(records))
    print(f'results: {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
