"""The NAS-BNN evolutionary search (``docs/nasbnn.md`` §5) on top of mmengine / mmpretrain.

Pieces (used by ``tools/nas/search.py``):

* :class:`SearchSettings`: the ``search = dict(...)`` config section, validated before anything runs.
* :func:`build_search_data`: a held-out split of the **training** set (``holdout`` images per class, the
  fitness set) and ``calib_images`` other training images for BN recalibration, as mmengine dataloaders
  (``Runner.build_dataloader``, the config's datasets and pipelines). The calibration batches are
  loaded once (seeded, in the main process) and reused for every candidate.
* :class:`CandidateEvaluator`: activate a subnet, recalibrate BN, top-1 with mmpretrain's ``Accuracy``.
* :class:`EvolutionSearch`: the loop. Generation 0 is the initial population, generations 1..``generations``
  the mutations and crossovers of parents drawn from the best candidate of every OPs bucket (or the
  current Pareto front, ``parents='front'``). Proposals use
  ``random.Random(seed, generation)`` and evaluation is deterministic, so a resumed run and a run whose
  candidates are spread over ranks (``torch.distributed``, results all-gathered) produce exactly the
  candidates and front of an uninterrupted single-process run. The state (every evaluated candidate) is
  written atomically after every generation.
"""
import copy
import hashlib
import json
import math
import os
import os.path as osp
import random
import time
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from mmengine.dist import all_gather_object, barrier, get_dist_info
from mmengine.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

from .bn_recalib import recalibrate_bn
from .evolution import (PARENT_SELECTIONS, OpsWindow, bucket_best, default_parent_bucket, initial_population, ops_m,
                        propose, select_parents, subnet_key)
from .pareto import pareto_front
from .space import SearchSpace
from .subnet import Subnet

STATE_FORMAT = 'mmdynbnn.nasbnn-search-state'
STATE_VERSION = 1


# ---------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class SearchSettings:
    """``search = dict(...)`` (reference values in ``configs/nasbnn/nasbnn-search_8xb64_in1k.py``).

    ops_window: (low, high) in M OPs (analytic, at the space's input size and class count); None = open.
    population: size of the initial population (generation 0), >= 2.
    generations: rounds of mutation + crossover after the initial population (as the reference: 20 means
        generations 0..20); 0 evaluates the initial population only.
    num_mutation / num_crossover: children proposed per later generation.
    mutation_prob: probability that a mutation resamples each choice.
    holdout: images per class held out of the training set as the fitness set.
    calib_images: training images (not held out) used to recalibrate BN before each evaluation.
    calib_batch_size: batch size of the calibration (None: the train dataloader's). Default 256 with
        2560 images: the reference's 10 batches of 256.
    seed: drives the split, the calibration images and every proposal.
    cache_holdout: keep the preprocessed held-out batches in memory (small fitness sets only).
    ops_bucket: width (M OPs) of the buckets in the per-generation log (None: 1/8 of the range).
    parents: ``'bucket'`` (the reference's): parents are the most accurate candidate of every OPs bucket
        of ``parent_bucket`` M OPs; ``'front'``: the non-dominated front (see
        :func:`~mmdynbnn.nas.evolution.select_parents`). Results report the true front either way.
    parent_bucket: width (M OPs) of the parent buckets; None: 1/80 of the searched OPs range
        (:func:`~mmdynbnn.nas.evolution.default_parent_bucket`: ~2M in the ImageNet space's [20, 180]).
    """
    ops_window: Optional[Tuple[Optional[float], Optional[float]]] = None
    population: int = 512
    generations: int = 20
    num_mutation: int = 128
    num_crossover: int = 128
    mutation_prob: float = 0.2
    holdout: int = 50
    calib_images: int = 2560
    calib_batch_size: Optional[int] = 256
    seed: int = 0
    cache_holdout: bool = False
    ops_bucket: Optional[float] = None
    parents: str = 'bucket'
    parent_bucket: Optional[float] = None

    @classmethod
    def from_config(cls, cfg: Optional[dict]) -> 'SearchSettings':
        if cfg is None:
            raise ValueError('the config has no `search = dict(...)` section (see configs/nasbnn/*search*.py)')
        cfg = dict(cfg)
        known = {f.name for f in fields(cls)}
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(f'search: unknown keys {sorted(unknown)}; allowed: {sorted(known)}')
        if 'ops_window' in cfg and cfg['ops_window'] is not None:
            w = OpsWindow.build(tuple(cfg['ops_window']))
            cfg['ops_window'] = (w.low, w.high)
        s = cls(**cfg)

        def integer(name: str, low: int, why: str = '') -> None:
            v = getattr(s, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f'search.{name}={v!r} must be an int >= {low}{why}')

        integer('population', 2, ' (the initial population needs at least 2 subnets, e.g. biggest and '
                                 'smallest)')
        integer('generations', 0, ' (rounds after the initial population)')
        integer('num_mutation', 0)
        integer('num_crossover', 0)
        integer('holdout', 1, ' (images per class held out of the training set)')
        integer('calib_images', 1)
        integer('seed', 0)
        if s.calib_batch_size is not None:
            integer('calib_batch_size', 1)
        if isinstance(s.mutation_prob, bool) or not isinstance(s.mutation_prob, (int, float)) \
                or not 0 <= s.mutation_prob <= 1:
            raise ValueError(f'search.mutation_prob={s.mutation_prob!r} must be in [0, 1]')
        if s.ops_bucket is not None and not (isinstance(s.ops_bucket, (int, float)) and s.ops_bucket > 0):
            raise ValueError(f'search.ops_bucket={s.ops_bucket!r} must be > 0 (M OPs) or None')
        if s.parents not in PARENT_SELECTIONS:
            raise ValueError(f'search.parents={s.parents!r} is not a parent selection; allowed: '
                             f'{list(PARENT_SELECTIONS)}')
        if s.parent_bucket is not None and (isinstance(s.parent_bucket, bool) or not isinstance(
                s.parent_bucket, (int, float)) or not s.parent_bucket > 0):
            raise ValueError(f'search.parent_bucket={s.parent_bucket!r} must be > 0 (M OPs) or None')
        return s

    @property
    def window(self) -> OpsWindow:
        return OpsWindow.build(self.ops_window)

    def fingerprint(self) -> dict:
        """What a resumed search must share with the saved one (``generations`` may grow)."""
        d = asdict(self)
        for k in ('generations', 'cache_holdout', 'ops_bucket'):
            d.pop(k)
        d['ops_window'] = list(d['ops_window']) if d['ops_window'] is not None else None
        return d


# ---------------------------------------------------------------------------- data
@DATA_SAMPLERS.register_module(force=True)
class WholeDatasetSampler(Sampler):
    """Every index of the dataset in order, on every rank (candidates, not images, are split over ranks)."""

    def __init__(self, dataset, seed: Optional[int] = None) -> None:
        self.size = len(dataset)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.size))

    def __len__(self) -> int:
        return self.size


def _dataset_cfg(loader_cfg) -> dict:
    cfg = copy.deepcopy(loader_cfg['dataset'])
    return cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg)


def split_training_set(labels: Sequence[int], holdout: int, calib_images: int, seed: int
                       ) -> Tuple[List[int], List[int]]:
    """``holdout`` random images of every class (the fitness set) and ``calib_images`` random images of
    the rest (the BN calibration set), both as sorted dataset indices."""
    rng = random.Random(seed)
    by_class: Dict[int, List[int]] = {}
    for i, c in enumerate(labels):
        by_class.setdefault(int(c), []).append(i)
    held = []
    for c in sorted(by_class):
        idx = by_class[c]
        if len(idx) <= holdout:
            raise ValueError(f'search.holdout={holdout}: class {c} has only {len(idx)} training images; '
                             f'hold out fewer per class')
        held += rng.sample(idx, holdout)
    taken = set(held)
    rest = [i for i in range(len(labels)) if i not in taken]
    calib = rng.sample(rest, min(calib_images, len(rest)))
    return sorted(held), sorted(calib)


def build_search_data(cfg, settings: SearchSettings) -> Tuple[Any, List[dict], dict]:
    """``(holdout_loader, calib_batches, info)`` from the config's train/val dataloaders.

    The fitness set uses the training dataset with the **val** pipeline; the calibration set the training
    dataset and pipeline (augmentations seeded). Both go through ``Runner.build_dataloader``.
    """
    from mmengine.registry import DATASETS
    from mmengine.runner import Runner, set_random_seed

    from ..utils.datasets import check_every_class_has_samples

    train_ds = _dataset_cfg(cfg.train_dataloader)
    dataset = DATASETS.build(copy.deepcopy(train_ds))
    check_every_class_has_samples(dataset, 'search: the training set (held-out and calibration images)')
    if not hasattr(dataset, 'get_gt_labels'):
        raise ValueError(f'search: the training dataset {type(dataset).__name__} has no get_gt_labels(); '
                         f'the held-out split needs the labels')
    held, calib = split_training_set(list(dataset.get_gt_labels()), settings.holdout, settings.calib_images,
                                     settings.seed)
    val_pipeline = copy.deepcopy(cfg.val_dataloader['dataset']['pipeline'])
    eval_cfg = copy.deepcopy(cfg.val_dataloader)
    eval_cfg = eval_cfg.to_dict() if hasattr(eval_cfg, 'to_dict') else dict(eval_cfg)
    eval_cfg.update(dataset=dict(train_ds, pipeline=val_pipeline, indices=held),
                    sampler=dict(type='WholeDatasetSampler'))
    eval_cfg.pop('batch_sampler', None)
    eval_loader = Runner.build_dataloader(eval_cfg, seed=settings.seed)

    calib_cfg = copy.deepcopy(cfg.train_dataloader)
    calib_cfg = calib_cfg.to_dict() if hasattr(calib_cfg, 'to_dict') else dict(calib_cfg)
    if settings.calib_batch_size is not None:
        calib_cfg['batch_size'] = settings.calib_batch_size
    calib_cfg.update(dataset=dict(train_ds, indices=calib), sampler=dict(type='WholeDatasetSampler'),
                     num_workers=0, persistent_workers=False)
    calib_cfg.pop('batch_sampler', None)
    set_random_seed(settings.seed)  # the same augmented calibration images on every rank and every run
    calib_loader = Runner.build_dataloader(calib_cfg, seed=settings.seed)
    calib_batches = list(calib_loader)
    info = dict(holdout_indices=held, calib_indices=calib, num_train=len(dataset))
    return eval_loader, calib_batches, info


# ---------------------------------------------------------------------------- evaluation
def build_classifier(cfg) -> torch.nn.Module:
    """The config's model as mmengine's ``Runner`` builds it: a top-level ``data_preprocessor`` (the
    normalisation of the mmpretrain configs) is used unless the model has its own. Call it under the
    mmpretrain default scope."""
    from mmpretrain.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))
    return MODELS.build(model_cfg)


class CandidateEvaluator:
    """Fitness of a subnet: BN recalibration on the calibration batches, then top-1 (%) on the held-out
    split with mmpretrain's ``Accuracy``. ``model`` is a classifier with a ``NASBNNSuperNet`` backbone."""

    def __init__(self, model: torch.nn.Module, calib_batches: List[dict], eval_loader,
                 cache_holdout: bool = False) -> None:
        from mmpretrain.evaluation import Accuracy
        self.model = model
        if hasattr(model, 'eval_subnet'):
            model.eval_subnet = None  # BiTeacherClassifier.predict must keep the subnet set here
        with torch.no_grad():
            self.calib_inputs = [model.data_preprocessor(b, False)['inputs'] for b in calib_batches]
        self.eval_loader = eval_loader
        self.cached = None
        if cache_holdout:
            with torch.no_grad():
                self.cached = [model.data_preprocessor(b, False) for b in eval_loader]
        self.metric_cls = Accuracy

    def _predictions(self) -> Iterator[list]:
        if self.cached is not None:
            for data in self.cached:
                yield self.model(data['inputs'], data['data_samples'], mode='predict')
        else:
            for batch in self.eval_loader:
                yield self.model.test_step(batch)

    @torch.no_grad()
    def __call__(self, subnet: Subnet) -> float:
        backbone = self.model.backbone
        backbone.set_subnet(subnet)
        backbone.mode = 'binary'
        recalibrate_bn(self.model, self.calib_inputs)
        metric = self.metric_cls(topk=(1,))
        for outputs in self._predictions():
            metric.process(None, [o.to_dict() for o in outputs])
        return float(metric.compute_metrics(metric.results)['top1'])


# ---------------------------------------------------------------------------- state
def atomic_write_json(obj: Any, path: str) -> None:
    from ..utils.io import atomic_write_json as write
    write(obj, path, indent=1)


def file_digest(path: str) -> str:
    """sha256 of a file (identifies the supernet checkpoint a search state belongs to)."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def load_state(path: str, space: SearchSpace, settings: SearchSettings, identity: Optional[dict] = None) -> dict:
    """Read and check a state file; ``ValueError`` naming the cause if it is corrupt or belongs to another
    search (different space, settings or ``identity``, e.g. the checkpoint digest)."""
    def corrupt(why: str) -> ValueError:
        return ValueError(f'resume file {path} is corrupt: {why}; delete it (or start without --resume) '
                          f'to search from scratch')

    try:
        with open(path) as f:
            state = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise corrupt(f'{type(e).__name__}: {e}') from None
    if not isinstance(state, dict) or state.get('format') != STATE_FORMAT:
        raise corrupt(f'not a search state (expected format {STATE_FORMAT!r})')
    if state.get('version') != STATE_VERSION:
        raise corrupt(f'version {state.get("version")!r}, expected {STATE_VERSION}')
    for key, typ in (('next_generation', int), ('candidates', list), ('space', dict), ('settings', dict)):
        if not isinstance(state.get(key), typ):
            raise corrupt(f'missing or malformed {key!r}')
    if state['space'] != space.to_config():
        raise ValueError(f'resume file {path} belongs to a search over another search space; use a new '
                         f'--work-dir or the original config')
    ours = settings.fingerprint()
    diff = sorted(k for k in set(ours) | set(state['settings']) if ours.get(k) != state['settings'].get(k))
    if diff:
        saved = state['settings']
        changes = ', '.join(f'{k}: saved {saved.get(k)!r}, now {ours.get(k)!r}' for k in diff)
        raise ValueError(f'resume file {path} was written with other search settings ({changes}); '
                         f'only `generations` may change on resume')
    saved_id = state.get('identity') or {}
    for k, v in (identity or {}).items():
        if k in saved_id and saved_id[k] != v:
            raise ValueError(f'resume file {path} belongs to another search: {k} is {saved_id[k]!r} there, '
                             f'{v!r} now (another supernet checkpoint?); use a new --work-dir')
    seen = set()
    for n, c in enumerate(state['candidates']):
        try:
            net = Subnet.from_config(c['subnet'], space)
            acc, ops, gen = float(c['accuracy']), float(c['ops']), int(c['generation'])
        except (KeyError, TypeError, ValueError) as e:
            raise corrupt(f'candidate {n}: {e}') from None
        if not (math.isfinite(acc) and 0 <= gen < state['next_generation']):
            raise corrupt(f'candidate {n}: accuracy {acc} / generation {gen} out of range')
        key = subnet_key(net)
        if key in seen:
            raise corrupt(f'candidate {n} is a duplicate')
        seen.add(key)
    return state


# ---------------------------------------------------------------------------- the loop
class EvolutionSearch:
    """Run (or resume) the search and write ``search_state.json``, ``search_results.json`` and
    ``search_results.png`` into ``work_dir``.

    ``resume_from``: a state file to continue from; ``resume`` (default: whether ``resume_from`` is given):
    also reuse the evaluations that the interrupted generation saved candidate by candidate.

    ``evaluate(subnet) -> top-1`` must be deterministic; under ``torch.distributed`` every rank builds
    the same proposals, evaluates its share (candidate ``i`` on rank ``i % world_size``) and the results
    are all-gathered, so all ranks hold the same state; rank 0 writes the files.
    """

    def __init__(self, space: SearchSpace, settings: SearchSettings, evaluate: Callable[[Subnet], float],
                 work_dir: str, logger=None, resume_from: Optional[str] = None, meta: Optional[dict] = None,
                 progress: bool = True, resume: Optional[bool] = None, identity: Optional[dict] = None) -> None:
        self.space, self.settings, self.evaluate = space, settings, evaluate
        self.window = settings.window
        self.window.check_reachable(space)
        self.work_dir = work_dir
        self.state_path = osp.join(work_dir, 'search_state.json')
        self.results_path = osp.join(work_dir, 'search_results.json')
        self.plot_path = osp.join(work_dir, 'search_results.png')
        self.logger = logger
        self.meta = meta or {}
        self.progress = progress
        self.rank, self.world_size = get_dist_info()
        self.partial_dir = osp.join(work_dir, 'search_partial')
        self.reuse: Dict[str, Tuple[float, int]] = {}
        self.identity = dict(identity or {})
        if resume_from is not None:
            self.state = load_state(resume_from, space, settings, self.identity)
        else:
            self.state = dict(format=STATE_FORMAT, version=STATE_VERSION, space=space.to_config(),
                              settings=settings.fingerprint(), identity=self.identity, next_generation=0,
                              candidates=[])
        if resume or (resume is None and resume_from is not None):
            self.reuse = self.load_partial()  # also for a generation 0 killed before any state was saved
            self.log(f'resumed from {resume_from or "scratch"}: {len(self.state["candidates"])} candidates, '
                     f'next generation {self.state["next_generation"]}; {len(self.reuse)} evaluations of the '
                     f'interrupted generation reused')

    def log(self, msg: str) -> None:
        if self.logger is not None:
            self.logger.info(msg)
        elif self.rank == 0:
            print(msg, flush=True)

    # ------------------------------------------------------------------ helpers
    def points(self) -> List[Tuple[float, float]]:
        return [(c['ops'], c['accuracy']) for c in self.state['candidates']]

    def front(self) -> List[int]:
        return pareto_front(self.points())

    @property
    def parent_bucket(self) -> float:
        """Width (M OPs) of the parent buckets (configured or the default of the space and window)."""
        if self.settings.parent_bucket is not None:
            return float(self.settings.parent_bucket)
        return default_parent_bucket(self.space, self.window)

    def parents(self) -> List[Subnet]:
        """Parents of the next generation (:func:`~mmdynbnn.nas.evolution.select_parents`)."""
        idx = select_parents(self.points(), self.settings.parents, self.parent_bucket)
        return [Subnet.from_config(self.state['candidates'][i]['subnet']) for i in idx]

    def rng(self, generation: int) -> random.Random:
        return random.Random(self.settings.seed * 1_000_003 + generation)

    def proposals(self, generation: int) -> Tuple[List[Subnet], dict]:
        s = self.settings
        rng = self.rng(generation)
        if generation == 0:
            nets = initial_population(self.space, s.population, self.window, rng)
            return nets, dict(initial=len(nets))
        seen = {subnet_key(Subnet.from_config(c['subnet'])) for c in self.state['candidates']}
        return propose(self.parents(), self.space, rng, self.window, seen, s.num_mutation, s.num_crossover,
                       s.mutation_prob)

    # ------------------------------------------------------------------ per-candidate progress
    def _partial_header(self, generation: int) -> dict:
        return dict(format=STATE_FORMAT + '-partial', version=STATE_VERSION, space=self.space.to_config(),
                    settings=self.settings.fingerprint(), identity=self.identity, generation=generation)

    def load_partial(self) -> Dict[str, Tuple[float, int]]:
        """Evaluations of the interrupted generation that every rank saved candidate by candidate
        (``search_partial/rank*.json``; any number of ranks). A file of another generation or search, or one
        that cannot be read, is only a lost cache: it is skipped with a warning."""
        reuse: Dict[str, Tuple[float, int]] = {}
        if not osp.isdir(self.partial_dir):
            return reuse
        want = self._partial_header(self.state['next_generation'])
        for name in sorted(os.listdir(self.partial_dir)):
            if not (name.startswith('rank') and name.endswith('.json')):
                continue
            path = osp.join(self.partial_dir, name)
            try:
                with open(path) as f:
                    data = json.load(f)
                if any(data.get(k) != v for k, v in want.items()):
                    continue
                for key, (acc, rank) in data['results'].items():
                    Subnet.from_config(json.loads(key), self.space)
                    reuse[key] = (float(acc), int(rank))
            except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
                self.log(f'warning: ignoring {path} ({type(e).__name__}: {e})')
        return reuse

    def evaluate_all(self, nets: List[Subnet], generation: int) -> List[Tuple[float, int]]:
        """``(top-1, rank that evaluated it)`` per candidate, on every rank. Each rank saves its results
        after every candidate (``search_partial/rank<r>.json``) so that a resumed run re-evaluates none."""
        mine = list(range(self.rank, len(nets), self.world_size))
        partial = dict(self._partial_header(generation), results={})
        partial_path = osp.join(self.partial_dir, f'rank{self.rank}.json')
        os.makedirs(self.partial_dir, exist_ok=True)
        bar = None
        if self.progress and self.rank == 0 and mine:
            from mmengine.utils import ProgressBar
            bar = ProgressBar(len(mine))
        local = []
        for i in mine:
            key = subnet_key(nets[i])
            result = self.reuse[key] if key in self.reuse else (self.evaluate(nets[i]), self.rank)
            local.append((i, result))
            partial['results'][key] = list(result)
            atomic_write_json(partial, partial_path)
            if bar is not None:
                bar.update()
        if bar is not None:
            print(flush=True)
        gathered = all_gather_object(local) if self.world_size > 1 else [local]
        acc: Dict[int, Tuple[float, int]] = {}
        for part in gathered:
            acc.update(dict(part))
        if sorted(acc) != list(range(len(nets))):
            raise RuntimeError(f'search: gathered {len(acc)} results for {len(nets)} candidates')
        return [acc[i] for i in range(len(nets))]

    def bucket_log(self) -> str:
        pts = self.points()
        lo, hi = min(p[0] for p in pts), max(p[0] for p in pts)
        width = self.settings.ops_bucket or max((hi - lo) / 8, 1e-6)
        if self.settings.ops_bucket:  # buckets at multiples of the width ([20, 22), [22, 24), ...)
            lo = math.floor(lo / width) * width
        best: Dict[int, float] = {}
        for ops, acc in pts:
            b = int((ops - lo) // width)
            best[b] = max(best.get(b, float('-inf')), acc)
        return ', '.join(f'[{lo + b * width:.2f}, {lo + (b + 1) * width:.2f})M: {a:.2f}'
                         for b, a in sorted(best.items()))

    # ------------------------------------------------------------------ run
    def run(self) -> dict:
        s = self.settings
        os.makedirs(self.work_dir, exist_ok=True)
        start_gen = self.state['next_generation']
        if start_gen > s.generations:
            self.log(f'nothing to do: generations 0..{start_gen - 1} already done (search.generations='
                     f'{s.generations})')
        for gen in range(start_gen, s.generations + 1):
            nets, stats = self.proposals(gen)
            self.log(f'generation {gen}/{s.generations}: evaluating {len(nets)} candidates '
                     f'({", ".join(f"{k} {v}" for k, v in stats.items())}) on {self.world_size} process(es)')
            t0 = time.perf_counter()
            accs = self.evaluate_all(nets, gen)
            dt = time.perf_counter() - t0
            for net, (acc, rank) in zip(nets, accs):
                self.state['candidates'].append(dict(subnet=net.to_config(), ops=ops_m(net, self.space),
                                                     accuracy=acc, generation=gen, rank=rank))
            self.state['next_generation'] = gen + 1
            if self.rank == 0:
                atomic_write_json(self.state, self.state_path)
            if self.world_size > 1:
                barrier()
            front = self.front()
            best = max(self.state['candidates'], key=lambda c: c['accuracy'])
            self.log(f'generation {gen} done: {len(nets)} candidates in {dt:.1f}s '
                     f'({dt / max(len(nets), 1):.2f}s/candidate), {len(self.state["candidates"])} in total, '
                     f'front size {len(front)}, best top-1 {best["accuracy"]:.2f} at {best["ops"]:.3f}M OPs')
            self.log(f'generation {gen}: best top-1 per OPs bucket: {self.bucket_log()}')
            if not nets:
                self.log(f'generation {gen}: no new candidate could be proposed (space exhausted in the window?)')
        results = self.results()
        if self.rank == 0:
            atomic_write_json(results, self.results_path)
            plot_results(results, self.plot_path)
            self.log(f'front ({len(results["front"])} subnets):\n' + '\n'.join(
                f'  [{k}] {c["ops"]:.4f}M OPs  top-1 {c["accuracy"]:.2f}  (generation {c["generation"]}, '
                f'candidate {c["index"]})' for k, c in enumerate(results['front'])))
            self.log(f'wrote {self.results_path}, {self.plot_path} and {self.state_path}')
        if self.world_size > 1:
            barrier()
        return results

    def results(self) -> dict:
        cands = [dict(index=i, **c) for i, c in enumerate(self.state['candidates'])]
        front = [cands[i] for i in self.front()]
        buckets = [cands[i] for i in bucket_best(self.points(), self.parent_bucket)] if cands else []
        return dict(format='mmdynbnn.nasbnn-search-results', settings=asdict(self.settings),
                    space=self.space.to_config(), generations_done=self.state['next_generation'],
                    ops_unit='M OPs (analytic, docs/nasbnn.md §4)', accuracy='top-1 (%) on the held-out split',
                    meta=self.meta, front=front, parent_bucket=self.parent_bucket, bucket_best=buckets,
                    candidates=cands)


# ---------------------------------------------------------------------------- outputs
def plot_results(results: dict, path: str) -> None:
    """OPs vs top-1 of every candidate (colour = generation) with the Pareto front highlighted."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    cands, front = results['candidates'], results['front']
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    sc = ax.scatter([c['ops'] for c in cands], [c['accuracy'] for c in cands],
                    c=[c['generation'] for c in cands], cmap='viridis', s=14, alpha=0.75, label='candidates')
    ax.plot([c['ops'] for c in front], [c['accuracy'] for c in front], '-o', color='tab:red', ms=6,
            mfc='none', mew=1.5, label=f'Pareto front ({len(front)})', drawstyle='steps-post')
    fig.colorbar(sc, ax=ax, label='generation')
    ax.set_xlabel('OPs (M)')
    ax.set_ylabel('top-1 on the held-out split (%)')
    ax.set_title(f'NAS-BNN search: {len(cands)} candidates')
    ax.grid(alpha=0.3)
    ax.legend(loc='lower right')
    fig.tight_layout()
    from ..utils.io import atomic_path
    with atomic_path(path, suffix='.png') as tmp:  # savefig picks the format from the extension
        fig.savefig(tmp)
    plt.close(fig)


def select_from_front(results: dict, ops_budget: Optional[float] = None, index: Optional[int] = None) -> dict:
    """The front entry to export: the most accurate one with at most ``ops_budget`` M OPs, or
    ``front[index]`` (front sorted by OPs; negative indices count from the end)."""
    front = results['front']
    if not front:
        raise ValueError('search results have an empty front')
    if (ops_budget is None) == (index is None):
        raise ValueError('give exactly one of an OPs budget or a front index')
    if index is not None:
        if not -len(front) <= index < len(front):
            raise ValueError(f'front index {index} out of range: the front has {len(front)} subnets')
        return front[index]
    under = [c for c in front if c['ops'] <= ops_budget]
    if not under:
        raise ValueError(f'no front subnet within {ops_budget}M OPs; the cheapest costs {front[0]["ops"]:.4f}M')
    return max(under, key=lambda c: (c['accuracy'], -c['ops']))
