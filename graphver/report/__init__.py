"""What results are and how they look.

    graphver/report/interval.py   ``Interval``, the result of ``Model.interval``
    graphver/report/results.py    ``VerifyResult``, ``BoundResult``, ``BabStats``; JSON
    graphver/report/render.py     terminal output: numbers, status colours, summary panel, tables
    graphver/report/plot.py       convergence plots

``Interval`` is imported on first use, so that the command line's imports of ``render`` stay free of torch.
"""


def __getattr__(name: str):
    if name == "Interval":
        from graphver.report.interval import Interval

        return Interval
    raise AttributeError(f"module 'graphver.report' has no attribute {name!r}")


__all__ = ["Interval"]
