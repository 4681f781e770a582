"""Batch runs on Ray (graphver.batch): every task in its own process, rows as tasks finish, and a task that
crashes, runs out of memory, raises or overruns is recorded as an error while the others finish.
One local Ray instance (2 CPUs) serves the whole module. The fault test runs by default; the command-line
batches are marked slow."""

from __future__ import annotations

import csv
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from graphver import batch, cli
from graphver.batch import Task, run_tasks

ray = pytest.importorskip("ray")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml4acopf"
MODEL = DATA / "onnx" / "14_ieee_ml4acopf.onnx"


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the task functions below, by value
    yield
    ray.shutdown()


def square(x):
    return x * x, os.getpid()


def crash(_):
    os.kill(os.getpid(), signal.SIGSEGV)


def hog(_):
    blocks = []
    for _ in range(64):
        blocks.append(bytearray(64 * 2**20))  # 64 MB at a time, past the task's cap
    return len(blocks)


def fail(_):
    raise ValueError("a broken input")


def linger(_):
    time.sleep(60)


def test_crashing_hogging_failing_and_lingering_tasks_are_errors_and_the_others_finish(monkeypatch):
    monkeypatch.setattr(batch, "GRACE_SECONDS", 2.0)
    tasks = [Task("ok1", square, (3,), 30), Task("segfault", crash, (0,), 30), Task("memory", hog, (0,), 30),
             Task("raises", fail, (0,), 30), Task("overruns", linger, (0,), 1), Task("ok2", square, (4,), 30)]
    seen = []
    results = run_tasks(tasks, workers=2, memory_mb=1024, on_result=seen.append)
    assert seen == results and sorted(r.key for r in results) == sorted(t.key for t in tasks)
    by_key = {r.key: r for r in results}
    assert by_key["ok1"].ok and by_key["ok1"].value[0] == 9 and by_key["ok2"].value[0] == 16
    assert by_key["ok1"].value[1] != by_key["ok2"].value[1]  # a fresh process per task
    assert not by_key["segfault"].ok and "died" in by_key["segfault"].error and by_key["segfault"].attempts == 2
    assert not by_key["memory"].ok and "memory" in by_key["memory"].error.lower()
    assert not by_key["raises"].ok and "ValueError: a broken input" in by_key["raises"].error
    assert not by_key["overruns"].ok and "cancelled" in by_key["overruns"].error


@pytest.mark.slow
@pytest.mark.skipif(not MODEL.is_file(), reason="../shared/data/ml4acopf is not present")
def test_vnncomp_instances_on_two_workers_write_rows_and_resume(tmp_path):
    instances = tmp_path / "instances.csv"
    rows = [f"{MODEL},{DATA / 'vnnlib' / f'14_ieee_prop{p}.vnnlib'},600" for p in (2, 6, 9)]
    instances.write_text("\n".join(rows) + "\n")
    out = tmp_path / "results.csv"
    result = CliRunner().invoke(cli.main, ["vnncomp", "--instances", str(instances), "--out", str(out),
                                           "--workers", "2", "--timeout", "120"])
    assert result.exit_code == 0, result.output
    with open(out) as handle:
        table = list(csv.DictReader(handle))
    assert sorted(r["vnnlib"] for r in table) == sorted(row.split(",")[1] for row in rows)
    assert all(r["verdict"] == "unsat" for r in table)
    again = CliRunner().invoke(cli.main, ["vnncomp", "--instances", str(instances), "--out", str(out),
                                          "--workers", "2"])
    assert again.exit_code == 0 and "already in" in again.output


@pytest.mark.slow
def test_acopf_batch_of_cases_on_two_workers(tmp_path):
    json_path = tmp_path / "cases.json"
    result = CliRunner().invoke(cli.main, ["acopf", "bound", "case3_lmbd", "case5_pjm", "--gap", "0.02",
                                           "--timeout", "120", "--workers", "2", "--json", str(json_path), "-q"])
    assert result.exit_code == 0, result.output
    lines = sorted(line for line in result.output.splitlines() if line.startswith("pglib_opf_"))
    assert [line.split(":")[0] for line in lines] == ["pglib_opf_case3_lmbd", "pglib_opf_case5_pjm"]
    assert all(": solved: lower " in line for line in lines)
    reports = json.loads(json_path.read_text())
    assert sorted(r["case"] for r in reports) == ["pglib_opf_case3_lmbd", "pglib_opf_case5_pjm"]
    assert all(r["status"] == "solved" and r["gap"] <= 0.02 for r in reports)


@pytest.mark.slow
def test_acopf_batch_records_a_broken_case_and_runs_the_rest(tmp_path):
    broken = tmp_path / "broken.m"
    broken.write_text("")
    result = CliRunner().invoke(cli.main, ["acopf", "bound", str(broken), "case3_lmbd", "--gap", "0.05",
                                           "--timeout", "60", "--workers", "2", "-q"])
    assert result.exit_code == cli.EXIT_INPUT, result.output
    assert "broken.m: error" in result.output and "is empty" in result.output
    assert "pglib_opf_case3_lmbd: solved" in result.output


@pytest.mark.slow
def test_a_file_s_properties_on_two_workers(tmp_path):
    path = tmp_path / "props.py"
    path.write_text("import graphver as gv\nm = gv.Model('p')\nx = m.var('x', -1, 1)\ny = m.var('y', 0, 2)\n"
                    "model = m\nproperties = {'holds': x * y <= 2.5, 'fails': x * y <= 1.5}\n")
    result = CliRunner().invoke(cli.main, ["verify", str(path), "-q", "--timeout", "30", "--workers", "2"])
    assert result.exit_code == cli.EXIT_FALSIFIED, result.output
    lines = sorted(line for line in result.output.splitlines() if ": " in line)
    assert lines[0].startswith("fails: falsified") and lines[1].startswith("holds: verified")
