"""Running the demo's planned runs several at a time, each in its own process.

The tiny world's models are too small to keep two cores busy inside one run: one ProFuser
training here takes 84 s with two threads and 108 s with one, while two one-thread trainings
side by side take 109 s and 110 s, both done in that time (measured on the README's 2-core
machine). So on a
machine of ``c`` cores the full demo runs ``jobs`` runs at once, each with ``c // jobs``
torch threads. A run's numbers depend on its thread count (floating-point sums split
differently), never on which runs share the machine with it: the same ``--jobs`` on the same
machine gives the same figures.

A study run reuses its seed's main run's upstream stages, so it waits until that main run
has finished (where the main run is planned at all); every other run may start at once.
Runs start in plan order as slots free up, and the results are handed back in plan order.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger("profuser")

Spec = TypeVar("Spec", bound=Sequence)


def machine_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_jobs(quick: bool) -> int:
    """The full demo runs two runs at once where there are two cores; the quick demo is
    one run, so one job that uses every core."""
    return 1 if quick else min(2, machine_cores())


def threads_per_job(jobs: int) -> int:
    """Torch threads for each of ``jobs`` concurrent runs: the cores shared out, at least 1."""
    return max(1, machine_cores() // jobs)


def run_seed(spec: Sequence) -> int | None:
    """The seed a planned run ``(label, dir, overrides, keep)`` sets (its last ``seed=``)."""
    seeds = [o.split("=", 1)[1] for o in spec[2] if o.startswith("seed=")]
    return int(seeds[-1]) if seeds else None


def ready(spec: Sequence, planned_mains: set[int | None], finished_mains: set[int | None]) -> bool:
    """Whether ``spec`` may start: a main run always; a study run once its seed's main run
    has finished, or at once where that main run is not planned (``--only``)."""
    if spec[0] == "main":
        return True
    seed = run_seed(spec)
    return seed not in planned_mains or seed in finished_mains


_run_name = ""  # in a worker: the run directory it is on, shown on each of its log lines


class _RunName(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.run = _run_name
        return True


def _init_worker(threads: int) -> None:
    """A worker process: ``threads`` torch threads, the world's registries, log lines that
    name their run."""
    import torch

    torch.set_num_threads(threads)
    handler = logging.StreamHandler()
    handler.addFilter(_RunName())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(run)s %(levelname)s %(message)s", "%H:%M:%S")
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    for noisy in ("transformers", "datasets", "httpx", "urllib3", "filelock", "lm_eval", "lm-eval"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    logging.getLogger("accelerate").setLevel(logging.WARNING)
    import profuser.world  # noqa: F401  (the tiny world's paths, verifier and tasks)


def _in_worker(runner: Callable[[Spec], Any], spec: Spec) -> Any:
    global _run_name
    _run_name = f"[{Path(spec[1]).name}]"
    return runner(spec)


def run_all(
    specs: Sequence[Spec],
    runner: Callable[[Spec], Any],
    jobs: int,
    on_done: Callable[[int, Any], None],
) -> None:
    """Run ``runner(spec)`` for every planned run, ``jobs`` at a time; ``on_done(index,
    result)`` is called in this process as each one finishes. One job runs them in this
    process, in order. With more, ``runner`` must be picklable (a module-level function or
    a ``functools.partial`` of one). After the first run fails no other starts; the runs
    already under way finish (every finished stage is kept, so the demo resumes), then its
    error is raised here."""
    if jobs <= 1:
        for i, spec in enumerate(specs):
            on_done(i, runner(spec))
        return
    threads = threads_per_job(jobs)
    planned_mains = {run_seed(s) for s in specs if s[0] == "main"}
    finished_mains: set[int | None] = set()
    pending = list(range(len(specs)))
    running: dict[Future, int] = {}
    # Children inherit these at spawn: one OpenMP pool of `threads` each, no tokenizer
    # threads on top, and no progress bars from several processes on one terminal.
    saved = {k: os.environ.get(k) for k in _CHILD_ENV}
    os.environ.update({**_CHILD_ENV, "OMP_NUM_THREADS": str(threads)})
    log.info("demo: %d runs, %d at a time, %d torch thread(s) each", len(specs), jobs, threads)
    try:
        with ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(threads,),
        ) as pool:
            try:
                while pending or running:
                    for i in list(pending):
                        if len(running) >= jobs:
                            break
                        if ready(specs[i], planned_mains, finished_mains):
                            pending.remove(i)
                            running[pool.submit(_in_worker, runner, specs[i])] = i
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in sorted(done, key=running.__getitem__):
                        i = running.pop(fut)
                        on_done(i, fut.result())
                        if specs[i][0] == "main":
                            finished_mains.add(run_seed(specs[i]))
            except BaseException:
                for fut in running:
                    fut.cancel()
                raise
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_CHILD_ENV = {
    "OMP_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "TQDM_DISABLE": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
}
