"""Network definitions. Each model maps config keys (``model.*``) one-to-one to constructor args.

Model contract used by :class:`cnn_ablations.module.Classifier`:
- ``forward(x)`` returns class scores ``(N, num_classes)``; ``argmax`` is the prediction;
- an optional ``loss(scores, target)`` method replaces cross-entropy (e.g. LeNet's RBF/MAP head).
"""
