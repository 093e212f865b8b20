"""Data: in-memory datasets, the index-slicing loader, and the LightningDataModule."""

from cnn_ablations.data.datamodule import ImageDataModule

__all__ = ["ImageDataModule"]
