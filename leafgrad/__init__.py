"""leafgrad: a define-by-run deep learning framework on NumPy, with DeZero's API and a lean memory model."""
from leafgrad.config import Config, enable_grad, is_grad_enabled, no_grad, test_mode, using_config
from leafgrad.core import Function, Parameter, Variable, as_array, as_variable
from leafgrad.engine import grad
from leafgrad import cuda, utils  # noqa: E402
import leafgrad.functions  # noqa: E402,F401

__version__ = "0.1.0"

__all__ = [
    "Variable", "Parameter", "Function", "Config", "using_config", "no_grad", "enable_grad",
    "test_mode", "is_grad_enabled", "as_variable", "as_array", "grad", "cuda", "utils", "functions",
]
