"""Batch runs on Ray: many independent tasks (VNN-COMP instances, ACOPF cases), each in its own process.

``run_tasks`` runs every ``Task`` (a picklable function, its arguments, its time limit) as a Ray task in a
fresh worker process (``max_calls=1``: nothing leaks from one task into the next), ``workers`` at a time,
and hands each ``TaskResult`` to ``on_result`` as soon as it is known, in completion order, so that
callers stream rows into their result files. No task is silently dropped:

- a task whose process dies (a segfault, the kernel's out-of-memory killer, ``ray.kill``) is run once
  more (Ray's ``max_retries=1``), then recorded as an error with the reason;
- a task that raises is recorded as an error with the exception (no retry: it would raise again);
- a task still running ``GRACE_SECONDS`` after its own limit is cancelled and recorded as an error;
- ``memory_mb`` caps what each task may map beyond what its worker process had mapped when the task
  started (``RLIMIT_AS`` at the process's address-space size plus ``memory_mb``): a task that exceeds it
  gets a ``MemoryError``, recorded as an error, and the other tasks go on.

Without ``address`` a local Ray instance with ``workers`` CPUs is started (and stopped at the end); an
existing instance (``ray.init`` by the caller) is used as it is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from graphver.bab.workers import start_ray

GRACE_SECONDS = 30.0  # past its own limit a task may take this long to wrap up before it is cancelled


@dataclass
class Task:
    key: Any  # what the caller recognises the task by (a row of instances.csv, a case name)
    function: Callable  # module-level (picklable) function
    args: tuple = ()
    limit: float = 60.0  # the task's own time limit, seconds (it is expected to keep to it)


@dataclass
class TaskResult:
    key: Any
    ok: bool
    value: Any = None  # the function's return value when ok
    error: str = ""  # why not, when not ok
    seconds: float = 0.0
    attempts: int = 1


def address_space_bytes() -> int:
    """The process's mapped address space (Linux: VmSize of /proc/self/status; 0 where unknown)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _run_capped(function, args, memory_mb):
    if memory_mb:
        import resource

        limit = address_space_bytes() + int(memory_mb * 2**20)
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    return function(*args)


def run_tasks(tasks: list[Task], workers: int = 1, address: str | None = None, memory_mb: float | None = None,
              on_result: Callable[[TaskResult], None] | None = None) -> list[TaskResult]:
    """Every task on Ray, ``workers`` at a time; the results in completion order (also passed to
    ``on_result`` one by one). Ctrl-C cancels what is running and re-raises ``KeyboardInterrupt``: the
    results handed out so far are the ones to keep."""
    ray, owns = start_ray(workers, address)
    remote = ray.remote(num_cpus=1, max_calls=1, max_retries=1, retry_exceptions=False)(_run_capped)
    results: list[TaskResult] = []
    queue = list(tasks)
    running: dict = {}  # future -> (task, started)
    try:
        while queue or running:
            while queue and len(running) < workers:
                task = queue.pop(0)
                running[remote.remote(task.function, task.args, memory_mb)] = (task, time.perf_counter())
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            now = time.perf_counter()
            finished = [(future, None) for future in ready]
            finished += [(future, "timeout") for future, (task, began) in running.items()
                         if future not in ready and now - began > task.limit + GRACE_SECONDS]
            for future, why in finished:
                task, began = running.pop(future)
                if why == "timeout":
                    ray.cancel(future, force=True)
                    result = TaskResult(task.key, False, error=f"still running {task.limit + GRACE_SECONDS:g} s after "
                                        f"its start (limit {task.limit:g} s): cancelled", seconds=now - began)
                else:
                    result = collect(ray, future, task, now - began)
                results.append(result)
                if on_result is not None:
                    on_result(result)
    except KeyboardInterrupt:
        for future in running:
            ray.cancel(future, force=True)
        raise
    finally:
        if owns:
            ray.shutdown()
    return results


def collect(ray, future, task: Task, seconds: float) -> TaskResult:
    try:
        return TaskResult(task.key, True, ray.get(future), seconds=seconds)
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayActorError, ray.exceptions.ObjectLostError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return TaskResult(task.key, False, error=f"its process died twice (run, then retried once): {reason}",
                          seconds=seconds, attempts=2)
    except ray.exceptions.OutOfMemoryError as error:
        return TaskResult(task.key, False, error=f"out of memory (killed by Ray's memory monitor): {error}",
                          seconds=seconds, attempts=2)
    except ray.exceptions.RayTaskError as error:
        cause = error.cause
        what = f"{type(cause).__name__}: {cause}" if cause is not None else str(error).splitlines()[0]
        if isinstance(cause, MemoryError):
            what = "MemoryError: the task exceeded its memory limit"
        return TaskResult(task.key, False, error=what, seconds=seconds)
