"""u2netp-mirror: export upstream U-2-Net's U2NETP to a validated, deterministic ONNX.

Importing this package is cheap: nothing here imports torch.  The parts that
need torch (``mirror.model``, ``mirror.export``, ``mirror.validate``) are
imported only by the code paths that use them.
"""

__version__ = "0.3.0"
