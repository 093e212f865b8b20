"""cnn-ablations: Hydra + Lightning + W&B ablations of classic CNNs (LeNet-5, AlexNet-lite)."""
