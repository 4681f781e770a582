"""``python -m graphver``: the command line (same as the ``graphver`` script)."""

from graphver.cli import main

if __name__ == "__main__":
    main(prog_name="graphver")
