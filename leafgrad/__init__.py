"""leafgrad: a define-by-run deep learning framework on NumPy, with DeZero's API and a lean memory model.

``import leafgrad as dezero`` runs programs written for DeZero 0.0.13.
"""
from leafgrad import allocator  # noqa: F401  (keeps freed array memory for reuse: see its docstring)
from leafgrad.config import Config, enable_grad, is_grad_enabled, no_grad, test_mode, using_config
from leafgrad.core import Function, Parameter, Variable, as_array, as_variable
from leafgrad.engine import grad
from leafgrad import cuda, utils  # noqa: E402
import leafgrad.functions  # noqa: E402,F401
from leafgrad.layers import Layer  # noqa: E402
from leafgrad.models import Model  # noqa: E402
from leafgrad.datasets import Dataset  # noqa: E402
from leafgrad.dataloaders import DataLoader, SeqDataLoader  # noqa: E402
from leafgrad.checkpoint import checkpoint  # noqa: E402
from leafgrad.serialization import SerializationError, load_checkpoint, save_checkpoint  # noqa: E402
from leafgrad import memory  # noqa: E402
import leafgrad.layers  # noqa: E402,F401
import leafgrad.models  # noqa: E402,F401
import leafgrad.optimizers  # noqa: E402,F401
import leafgrad.datasets  # noqa: E402,F401
import leafgrad.dataloaders  # noqa: E402,F401
import leafgrad.transforms  # noqa: E402,F401
import leafgrad.serialization  # noqa: E402,F401

__version__ = "0.1.0"

#: DeZero's switch between its two cores (the book's steps 28-29 read it); leafgrad has one core, the full one.
is_simple_core = False

__all__ = [
    "Variable", "Parameter", "Function", "Config", "using_config", "no_grad", "enable_grad",
    "test_mode", "is_grad_enabled", "as_variable", "as_array", "grad", "checkpoint",
    "save_checkpoint", "load_checkpoint", "SerializationError", "memory", "allocator",
    "Layer", "Model", "Dataset", "DataLoader", "SeqDataLoader",
    "cuda", "utils", "functions", "layers", "models", "optimizers", "datasets", "dataloaders",
    "transforms", "serialization",
]
