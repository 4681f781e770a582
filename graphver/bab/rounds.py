"""How many domains a round pops: as many as the time left and the memory budget allow.

A round's cost grows with the domains it pops (children are bounded in one batched call), and a round cut
short by the deadline is wasted work. ``RoundSizer`` measures every round, wall seconds and peak memory
per popped domain, and sizes the next one so that it takes at most half the time left (and at most a tenth
of the run, at least 1 s, so best-first order stays fresh) and fits the memory budget
(``BabOptions.memory_mb``, the process's resident memory on the CPU, allocated memory on a GPU). The
first round is small (costs unknown), and a round is at most 4 times the previous one.

Memory is watched by a sampling thread while a round runs (``/proc/self/statm`` every few milliseconds; a
batch's tensors live for a whole pass, so the sampler sees them) on Linux, and by
``torch.cuda.max_memory_allocated`` on CUDA; elsewhere only the time rule applies.
"""

from __future__ import annotations

import os
import threading

import torch

from graphver import clock
from graphver.options import BabOptions

FIRST_ROUND = 16  # domains of the first round
GROWTH = 4  # a round pops at most this many times the previous one
ROUND_SHARE = 0.1  # a round takes at most this share of the run (and at most half the time left)
MIN_ROUND_SECONDS = 1.0
SAMPLE_SECONDS = 0.005


class MemoryWatch:
    """Peak memory (bytes) of the process while a round runs: a sampling thread on Linux CPUs, the
    allocator's peak on CUDA, nothing elsewhere (``peak`` returns None)."""

    def __init__(self, device):
        self.cuda = device is not None and torch.device(device).type == "cuda"
        self.page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self.linux = os.path.exists("/proc/self/statm")
        self.high = 0
        self.thread: threading.Thread | None = None
        self.stop_event = threading.Event()

    def resident(self) -> int | None:
        if self.cuda:
            return torch.cuda.memory_allocated()
        if not self.linux:
            return None
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def start(self) -> int | None:
        """Begin watching; returns the memory in use now."""
        now = self.resident()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        elif now is not None:
            self.high = now
            self.stop_event.clear()
            self.thread = threading.Thread(target=self.sample, daemon=True)
            self.thread.start()
        return now

    def sample(self) -> None:
        while not self.stop_event.wait(SAMPLE_SECONDS):
            self.high = max(self.high, self.resident() or 0)

    def peak(self) -> int | None:
        """Stop watching; the highest memory seen since ``start``."""
        if self.cuda:
            return torch.cuda.max_memory_allocated()
        if self.thread is None:
            return None
        self.stop_event.set()
        self.thread.join()
        self.thread = None
        return max(self.high, self.resident() or 0)


class RoundSizer:
    def __init__(self, options: BabOptions, device, lp: bool):
        # every domain gets LPs: each costs milliseconds, smaller rounds stay closer to best-first
        self.cap = min(options.batch_size, options.lp_batch_size) if lp else options.batch_size
        self.budget = options.memory_mb * 2**20
        self.timeout = options.timeout
        self.watch = MemoryWatch(device)
        self.seconds_per_domain: float | None = None
        self.bytes_per_domain: float | None = None
        self.last: int | None = None
        self.baseline: int | None = None

    def size(self, deadline: float) -> int:
        """The number of domains to pop now (at least 1); starts watching memory for ``record``."""
        n = self.cap if self.last is None else min(self.cap, GROWTH * self.last)
        if self.last is None:
            n = min(n, FIRST_ROUND)
        if self.seconds_per_domain:
            target = min(clock.remaining(deadline) / 2, max(MIN_ROUND_SECONDS, ROUND_SHARE * self.timeout))
            n = min(n, int(target / self.seconds_per_domain))
        self.baseline = self.watch.start()
        if self.bytes_per_domain and self.baseline is not None:
            n = min(n, int((self.budget - self.baseline) / self.bytes_per_domain))
        self.last = max(1, n)
        return self.last

    def record(self, popped: int, seconds: float) -> None:
        """A round of ``popped`` domains took ``seconds``: update the costs per domain."""
        peak = self.watch.peak()
        if popped <= 0:
            return
        cost = seconds / popped
        self.seconds_per_domain = cost if self.seconds_per_domain is None else 0.5 * (self.seconds_per_domain + cost)
        if peak is not None and self.baseline is not None and peak > self.baseline:
            self.bytes_per_domain = (peak - self.baseline) / popped
