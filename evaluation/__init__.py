"""``invoke evaluate``: the measured promotion gate, a candidate saliency ONNX against a baseline.

On a labelled image set it computes the field's metrics (MAE, S-measure, max F-measure, mean
E-measure, weighted F-measure; with pysodmetrics), how far the two models agree, and their
latency, and writes evaluation.json, evaluation.md and evaluation.png.  Needs onnxruntime,
numpy, Pillow, pysodmetrics and matplotlib (the ``[evaluate]`` extra), never torch.
"""
