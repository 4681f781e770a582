"""The ``graphver`` command line.

    graphver/cli/group.py       the command group, plug-in commands, the program (``run``, ``leave``)
    graphver/cli/commands.py    verify, bound, interval on a model file, through one ``finish``
    graphver/cli/vnncomp.py     vnncomp on ONNX + VNN-LIB instances
    graphver/cli/model_file.py  loading a model file and reading its ingredients
    graphver/cli/options.py     shared options and the checks made before a long run
    graphver/cli/errors.py      exit codes and ``run_guarded``, the one exception-to-exit-code mapping

Results are drawn by graphver/report/render.py (tables, the summary panel, status colours) and
graphver/report/plot.py; plug-in commands (acopf) use the same two modules.
"""

from __future__ import annotations

from graphver.cli import commands as _commands
from graphver.cli.errors import (EXIT_FALSIFIED, EXIT_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNKNOWN,
                                 InputError, run_guarded)
from graphver.cli.group import add_plugin_commands, leave, main, run
from graphver.cli.options import check_output, check_plotting, show_progress
from graphver.cli.vnncomp import vnncomp as _vnncomp

for _command in (_commands.verify, _commands.bound, _commands.interval):
    main.add_command(_command)
main.add_command(_vnncomp, "vnncomp")
add_plugin_commands(main)

__all__ = ["EXIT_FALSIFIED", "EXIT_INPUT", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_UNKNOWN",
           "InputError", "check_output", "check_plotting", "leave", "main", "run", "run_guarded", "show_progress"]
