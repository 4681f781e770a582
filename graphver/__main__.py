"""``python -m graphver``: the command line (same as the ``graphver`` script)."""

from graphver import clock
from graphver.cli import main

if __name__ == "__main__":
    clock.started_as_command()
    main(prog_name="graphver")
