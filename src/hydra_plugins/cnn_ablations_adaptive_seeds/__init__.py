"""The ``adaptive_seeds`` Hydra sweeper of cnn-ablations (``hydra/sweeper=adaptive_seeds``)."""
