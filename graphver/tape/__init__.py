"""The frozen tape and the compiler that builds it."""

from graphver.tape.compile import compile_expressions
from graphver.tape.evaluate import evaluate
from graphver.tape.tape import Instruction, Tape

__all__ = ["Instruction", "Tape", "compile_expressions", "evaluate"]
