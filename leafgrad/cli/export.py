"""``leafgrad export RUN_DIR [--out model.onnx]``: a run trained with ``--data`` as an ONNX model.

The exported model does what ``leafgrad predict`` does before and after the
network: it takes the raw feature values ``(N, D)`` as float64, in the order of
the metadata's ``features`` (the CSV's columns as the run read them), applies
the run's stored standardization (as ONNX operations), and returns the
network's outputs (``scores``: logits, or the predicted values in regression)
and, for classification, ``probabilities`` (their softmax).  The metadata
holds the feature names, the class names (class ``i`` is ``classes[i]``), the
target column and the task, as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Any

import numpy as np

from leafgrad.cli.errors import DataError, UsageError
from leafgrad.cli.predict import _load_info, load_run_model
from leafgrad.cli.run_folder import WEIGHTS, read_run
from leafgrad.cli.table import DataInfo
from leafgrad.core import Function

__all__ = ["cmd_export"]


class _Standardize(Function):
    """The run's scaling exactly as ``predict`` applies it: ``(x - mean) / std`` in float64, then float32.

    It exists only to be written out by the exporter (its ``to_onnx``): nothing differentiates it.
    """

    retain_inputs = ()

    def __init__(self, info: DataInfo) -> None:
        self.info = info

    def forward(self, x):
        return self.info.scale(x)  # (a feature constant in the training rows, if the run lists them, reads 0)

    def to_onnx(self, g, inputs, outputs):
        """ONNX form: Sub and Div in float64 (the input cast first if it is not), then Cast to float32."""
        x = inputs[0] if g.dtype(inputs[0]) == np.float64 else g.op("Cast", inputs[0], to=11)  # 11: DOUBLE
        z = g.op("Div", g.op("Sub", x, g.const(self.info.mean)), g.const(self.info.std))
        constant = list(getattr(self.info, "constant", None) or ())
        if constant:
            kept = np.ones(len(self.info.mean), dtype=bool)
            kept[constant] = False
            z = g.op("Where", g.const(kept), z, g.const(0.0, dtype=np.float64))
        g.op("Cast", z, out=outputs[0], to=1)  # 1: FLOAT


def _pipeline(model: Any, info: DataInfo, kind: str) -> Any:
    """Raw feature rows in, what ``predict`` computes out: the scores, and the probabilities in classification."""
    import leafgrad.functions as F

    def forward(x: Any) -> Any:
        h = _Standardize(info)(x)
        if kind == "cnn":
            h = F.reshape(h, (h.shape[0],) + tuple(info.image_shape))
        y = model(h)
        return y if info.task == "regression" else (y, F.softmax(y))
    forward.named_params = model.named_params  # the parameters keep their names in the ONNX file
    return forward


def cmd_export(args: argparse.Namespace) -> int:
    """``leafgrad export``: write the run in ``RUN_DIR`` as an ONNX model."""
    record = read_run(args.run, "RUN_DIR", need=(WEIGHTS,), purpose="to export")
    if "data_info" not in record and record.get("kind") != "text":
        raise UsageError(f"{args.run} was trained on the built-in data set "
                         f"{record['config'].get('dataset', 'a built-in data set')}; leafgrad export writes runs "
                         "trained on your own file (leafgrad train --data PATH)")
    info = _load_info(args.run, record)
    config = record["config"]
    out = args.out if args.out is not None else os.path.join(args.run, "model.onnx")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write --out {out}: folder {folder} does not exist")
    try:
        from leafgrad.onnx import export
        import onnx  # noqa: F401
    except ImportError:
        raise DataError('leafgrad export needs the onnx package: pip install "leafgrad[onnx]"') from None
    model = load_run_model(args.run, config, info)  # predict's loading: built first, every weight checked
    example = np.zeros((2, len(info.features)), dtype=np.float64)
    names = ["scores"] if info.task == "regression" else ["scores", "probabilities"]
    metadata = {"features": json.dumps(info.features), "target": info.target, "task": info.task,
                "classes": json.dumps(info.labels), "model": config["model"]}
    try:
        export(_pipeline(model, info, config["model"]), example, out, input_names=["features"],
               output_names=names, metadata=metadata)
    except OSError as err:
        raise UsageError(f"cannot write --out {out}: {err.strerror or err}") from None
    if not args.quiet:
        outputs = " and ".join(names)
        print(f"wrote {out}: raw features {', '.join(info.features[:4])}{', ...' if len(info.features) > 4 else ''} "
              f"(float64, shape (N, {len(info.features)})) in, {outputs} out")
    return 0
