"""LightningDataModule over in-memory uint8 tensors; batches are normalised/augmented on device."""

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from cnn_ablations.data.augment import pca_color_jitter, random_crop, random_hflip, rgb_pca
from cnn_ablations.data.datasets import Split, Splits, load_dataset
from cnn_ablations.data.loader import EpochSampler, TensorBatchLoader
from cnn_ablations.errors import ConfigError, check_bool, check_choice, check_int, check_number

AUGMENTATIONS = ("crop_padding", "hflip", "pca_sigma")  # the keys of data.augment
LECUN_BACKGROUND, LECUN_FOREGROUND = -0.1, 1.175  # LeCun 1998: mean ~0, variance ~1 on MNIST


def _standard(train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The training set's per-channel mean and std: x -> (x - mean) / std."""
    channels = train.shape[1]
    pixels = train.double().div_(255).transpose(0, 1).reshape(channels, -1)
    mean, std = pixels.mean(1).float(), pixels.std(1).float()
    return 1 / std, -mean / std


def _lecun(train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LeCun 1998: background (0) -> -0.1, foreground (1) -> 1.175."""
    channels = train.shape[1]
    scale = torch.full((channels,), LECUN_FOREGROUND - LECUN_BACKGROUND)
    return scale, torch.full((channels,), LECUN_BACKGROUND)


def _none(train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels stay in [0, 1] (torchvision's ToTensor alone, as d2l.ai)."""
    channels = train.shape[1]
    return torch.ones(channels), torch.zeros(channels)


# data.normalization -> (training images) -> per-channel (scale, shift): x -> x * scale + shift
NORMALIZATIONS = {"standard": _standard, "lecun": _lecun, "none": _none}


class ImageDataModule(pl.LightningDataModule):
    """Train/val/test batches of an image dataset from ``cnn_ablations.data.datasets``.

    The whole dataset is one uint8 tensor; with ``device_resident`` it is moved to the training
    device once, shuffled there with one permutation per epoch, and sliced into batches. Each
    batch is turned to float, padded to ``pad_to`` with background, augmented (training batches
    only: random crop, horizontal flip, AlexNet PCA colour noise) and normalised on the device,
    in ``on_after_batch_transfer``.
    """

    def __init__(
        self,
        dataset: str = "mnist5k",
        root: str = "data",
        num_classes: int | None = None,
        channels: int | None = None,
        image_size: int | None = None,
        batch_size: int = 64,
        eval_batch_size: int = 1000,
        drop_last: bool = False,
        normalization: str = "standard",
        pad_to: int | None = None,
        device_resident: str | bool = "auto",
        augment: dict | None = None,
        seed: int = 0,
    ):
        super().__init__()
        check_choice("data.normalization", normalization, NORMALIZATIONS)
        check_choice("data.device_resident", device_resident, ("auto", True, False))
        check_int("data.batch_size", batch_size)
        check_int("data.eval_batch_size", eval_batch_size)
        check_bool("data.drop_last", drop_last)
        augment = dict(augment or {})
        unknown = sorted(set(augment) - set(AUGMENTATIONS))
        if unknown:
            raise ConfigError(
                f"data.augment has unknown keys {unknown}; valid: {', '.join(AUGMENTATIONS)}"
            )
        self.crop_padding = augment.get("crop_padding", 0)
        self.hflip = augment.get("hflip", False)
        self.pca_sigma = augment.get("pca_sigma", 0.0)
        check_int("data.augment.crop_padding", self.crop_padding, minimum=0)
        check_bool("data.augment.hflip", self.hflip)
        check_number("data.augment.pca_sigma", self.pca_sigma, minimum=0)
        self.dataset, self.root = dataset, root
        self.declared = {"num_classes": num_classes, "channels": channels, "image_size": image_size}
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.drop_last, self.normalization = drop_last, normalization
        self.pad_to, self.device_resident = pad_to, device_resident
        self.seed = seed
        self.splits: Splits | None = None
        self.summary: dict = {}

    @property
    def num_classes(self) -> int:
        return self.splits.num_classes

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        self.splits = load_dataset(self.dataset, self.root)
        train = self.splits.train.images
        channels, height = train.shape[1], train.shape[2]
        actual = {
            "num_classes": self.splits.num_classes,
            "channels": channels,
            "image_size": height,
        }
        for key, declared in self.declared.items():
            if declared is not None and declared != actual[key]:
                raise ConfigError(
                    f"data.{key}={declared} but data.dataset={self.dataset!r} has "
                    f"{actual[key]}; set data.{key}={actual[key]}"
                )
        if self.pad_to is not None and height > self.pad_to:
            raise ConfigError(
                f"data.dataset={self.dataset!r} has {height}x{height} images but "
                f"the model takes {self.pad_to}x{self.pad_to}; set model.input_size="
                f"{height}"
            )
        scale, shift = NORMALIZATIONS[self.normalization](train)
        # normalize(x) = x * scale + shift, per channel; moved to the batch's device once
        self._affine = scale.view(1, -1, 1, 1), shift.view(1, -1, 1, 1)
        self.summary = {"data/train_size": len(self.splits.train), "data/channels": channels}
        if self.pca_sigma > 0:
            if channels != 3:
                raise ConfigError(
                    f"data.augment.pca_sigma={self.pca_sigma} needs RGB images; "
                    f"data.dataset={self.dataset!r} has {channels} channel(s)"
                )
            # on the uint8 pixels (chunked, no float copy of the set), then rescaled to [0, 1]
            eigenvalues, self.pca_eigenvectors = rgb_pca(train)
            self.pca_eigenvalues = eigenvalues / 255**2
            self.summary["data/pca_eigenvalues"] = self.pca_eigenvalues.tolist()

    # -- loaders -----------------------------------------------------------------------------
    def _device(self) -> torch.device:
        """Where the dataset tensors live: the training device if resident, else the CPU."""
        device = self.trainer.strategy.root_device if self.trainer else torch.device("cpu")
        if device.type == "cpu" or self.device_resident is False:
            return torch.device("cpu")
        if self.device_resident == "auto" and device.type == "cuda":
            nbytes = sum(
                s.images.nbytes for s in (self.splits.train, self.splits.val, self.splits.test)
            )
            if nbytes > 0.25 * torch.cuda.get_device_properties(device).total_memory:
                return torch.device("cpu")
        return device

    def _loader(self, split: Split, batch_size: int, shuffle: bool, drop_last: bool):
        rank, world = (
            (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        )
        device = self._device()
        sampler = EpochSampler(len(split), shuffle, self.seed, rank, world, drop_last and shuffle)
        return TensorBatchLoader(
            split.images.to(device), split.labels.to(device), batch_size, sampler, drop_last
        )

    def train_dataloader(self):
        # overfit_batches trains on the same first batches every epoch (Lightning does this for
        # its own samplers, not ours)
        shuffle = not (self.trainer is not None and self.trainer.overfit_batches > 0)
        return self._loader(self.splits.train, self.batch_size, shuffle, self.drop_last)

    def val_dataloader(self):
        return self._loader(self.splits.val, self.eval_batch_size, False, False)

    def test_dataloader(self):
        return self._loader(self.splits.test, self.eval_batch_size, False, False)

    # -- per-batch transforms, on the device -----------------------------------------------------
    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels = batch
        x = images.float().div_(255)
        if self.pad_to is not None and x.shape[-1] < self.pad_to:
            total = self.pad_to - x.shape[-1]
            x = F.pad(x, (total // 2, total - total // 2, total // 2, total - total // 2))
        if self.trainer is not None and self.trainer.training:
            x = self.augment_batch(x)
        return self.normalize(x), labels

    def augment_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Training-batch augmentation (x float in [0, 1]), as ``data.augment`` sets it."""
        if self.crop_padding:
            x = random_crop(x, self.crop_padding)
        if self.hflip:
            x = random_hflip(x)
        if self.pca_sigma > 0:
            x = pca_color_jitter(
                x,
                self.pca_eigenvalues,
                self.pca_eigenvectors,
                self.pca_sigma,
            )
        return x

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Map [0, 1] float pixels to the model's input scale (``data.normalization``), in place.

        In place because every batch is a fresh tensor here: a new (N, C, H, W) float tensor per
        step costs page faults on the CPU (docs/performance.md).
        """
        scale, shift = self._affine
        if scale.device != x.device:
            self._affine = scale, shift = scale.to(x.device), shift.to(x.device)
        return x.mul_(scale).add_(shift)
