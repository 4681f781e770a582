"""Registering graphver with Pyomo's solver factory once Pyomo is imported, without importing it first.

``import graphver`` must stay light (no Pyomo, torch or sympy until used), yet ``SolverFactory("graphver")``
must work whichever of the two a user imports first. When Pyomo is not imported yet, a finder on
``sys.meta_path`` waits for ``pyomo.opt``: it lets the normal finders locate the module, wraps the loader
so that the module runs as usual, then registers the solver (graphver.pyomo_api.register) and removes
itself. Nothing else is changed: every other import passes through untouched.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

WATCHED = "pyomo.opt"


class _RegisteringLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        from graphver.pyomo_api import register

        register()


class _PyomoWatcher(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != WATCHED:
            return None
        remove_hook()
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _RegisteringLoader(spec.loader)
        return spec


def register_on_import() -> None:
    """Install the watcher (once)."""
    if not any(isinstance(finder, _PyomoWatcher) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PyomoWatcher())


def remove_hook() -> None:
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _PyomoWatcher)]
