"""``python -m graphver.cli``: the command line (same as the ``graphver`` script)."""

from graphver.cli import run

if __name__ == "__main__":
    run()
