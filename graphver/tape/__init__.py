"""The frozen tape and the compiler that builds it.

``compile_expressions`` (sympy to tape) is imported on first use: sympy takes about a second to import,
and paths that build tapes without it (ONNX, Pyomo) never need it."""

from graphver.tape.evaluate import evaluate
from graphver.tape.tape import Instruction, Tape

__all__ = ["Instruction", "Tape", "compile_expressions", "evaluate"]


def __getattr__(name: str):
    if name == "compile_expressions":
        from graphver.tape.compile import compile_expressions

        return compile_expressions
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
