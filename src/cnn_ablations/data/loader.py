"""Batches by index slicing over in-memory tensors: no Dataset, no per-sample Python, no workers.

A LeNet-5 step on 64 MNIST digits costs about a millisecond, so a per-sample ``Dataset`` +
``DataLoader`` (collate, PIL, worker IPC) would dominate the epoch; see docs/performance.md.
torch's DataLoader offers no batch-slicing path over whole tensors, hence this small loader.
"""

import math

import torch


class EpochSampler:
    """Index order for one epoch: a seeded permutation per epoch, sharded per rank.

    Same semantics as ``torch.utils.data.DistributedSampler``: every rank gets a disjoint
    ``1/world_size`` share (padded by wrapping around, or trimmed when ``drop_last``), and the
    order depends only on ``(seed, epoch)``. Lightning calls ``set_epoch`` before each epoch
    (also after resuming), so a resumed run sees the same order as an uninterrupted one.
    """

    def __init__(
        self,
        size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ):
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.epoch = 0
        if drop_last:
            self.num_samples = size // world_size
        else:
            self.num_samples = math.ceil(size / world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> torch.Tensor:
        """This rank's indices for the current epoch (int64, CPU)."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=generator)
        else:
            order = torch.arange(self.size)
        total = self.num_samples * self.world_size
        if total > self.size:  # pad by wrapping around, like DistributedSampler
            order = torch.cat([order, order[: total - self.size]])
        return order[:total][self.rank :: self.world_size]

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples


class TensorBatchLoader:
    """Iterates ``(images[idx], labels[idx])`` batches over tensors that stay where they are.

    ``images``/``labels`` may live on the GPU; indexing happens on their device, so a batch never
    crosses the bus. ``drop_last`` drops this rank's last partial batch.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        sampler: EpochSampler,
        drop_last: bool = False,
    ):
        self.images, self.labels = images, labels
        self.batch_size, self.drop_last = batch_size, drop_last
        self.sampler = sampler  # Lightning finds `.sampler` and calls its set_epoch
        self.batch_sampler = None  # (Lightning inspects DataLoader-like attributes)

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        order = self.sampler.indices().to(self.images.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start : start + self.batch_size]
            # index_select, not images[idx]: ~10x faster for uint8 on the CPU (docs/performance.md)
            yield self.images.index_select(0, idx), self.labels.index_select(0, idx)
