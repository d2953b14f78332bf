"""The process-pool executor: worker processes that run one item at a time, so that a worker's death is pinned on its
item alone; items admitted within a memory budget; workers that never outlive the run."""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import forkserver, resource_tracker
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from typing import Any

from qa.execute.base import Cost, Executor, Outcome, R, T, Task, TaskQueue

# A worker that dies while running an item is replaced and the item runs once more in the new worker: a death that
# was not the item's doing (the OOM killer choosing that process, an operator's kill) then costs nothing. An item that
# kills its worker twice gets no result.
ATTEMPTS = 2
# Items sent to a worker at once: the one it runs and the next, which it reads while this process takes the last
# result, so that it never waits for this process (latency that a busy machine makes long).
DEPTH = 2
STOP_SECONDS = 5.0


@dataclass(frozen=True)
class _Raised:
    """The function raised in the worker instead of returning: a bug, reported as the item's outcome."""

    error: str


class _Worker:
    """A worker process, this end of its pipe, and the tasks sent to it and not answered yet, in order."""

    def __init__(self, context: BaseContext, lifeline: Connection, fn: Callable[[Any], Any]) -> None:
        self.conn, child_end = context.Pipe()
        self.process = context.Process(target=_serve, args=(child_end, lifeline, fn), name="tsqa-worker",
                                       daemon=True)
        self.process.start()
        child_end.close()
        self.tasks: deque[Task] = deque()

    def send(self, task: Task) -> None:
        self.tasks.append(task)
        try:
            self.conn.send(task.item)
        except OSError:  # it has died: its sentinel says so next, and its tasks are dealt with then
            pass

    def reply(self) -> tuple[bool, Any]:
        """(True, what the worker sent for its first task) or (False, None) when it died instead."""
        try:
            if self.conn.poll():
                return True, self.conn.recv()
        except (EOFError, OSError):
            pass
        return False, None

    def death(self) -> str:
        self.process.join(STOP_SECONDS)
        code = self.process.exitcode
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return "still running" if code is None else f"exit status {code}"

    def stop(self, kill: bool) -> None:
        if kill:
            self.process.kill()
        self.conn.close()  # an idle worker reads the end of its pipe and returns


class PoolExecutor(Executor):
    """`jobs` worker processes, started from a fork server that has imported `preload` (so that each worker starts in
    milliseconds with no more memory than those modules need) and killed when the map ends or is abandoned.

    A worker runs one item at a time, in the order it was sent them, so when it dies the culprit is known: the first
    item it had not answered. That item runs once more in a fresh worker (ATTEMPTS), and its outcome is a crash if it
    dies again; the item sent behind it never started and just goes back in line; the other workers are not disturbed.
    With a `budget`, an item is sent only while the costs of the items sent and not answered fit in it."""

    def __init__(self, jobs: int, budget: int | None = None, preload: Sequence[str] = ()) -> None:
        self.jobs, self.budget, self.preload = jobs, budget, tuple(preload)

    def map(self, fn: Callable[[T], R], items: Iterable[T], cost: Cost | None = None) -> Iterator[Outcome[T, R]]:
        context = start_fork_server(self.preload)
        lifeline, self_end = context.Pipe(duplex=False)  # workers watch the reading end; this process holds the other
        start = functools.partial(_Worker, context, lifeline, fn)
        workers = [start() for _ in range(self.jobs)]
        try:
            yield from self._run(start, workers, TaskQueue(items, cost))
        except BaseException:  # interrupted, terminated or abandoned: the work in flight is not wanted any more
            for worker in workers:
                worker.stop(kill=True)
            raise
        finally:
            for worker in workers:
                worker.stop(kill=False)
            deadline = time.monotonic() + STOP_SECONDS
            for worker in workers:
                worker.process.join(max(0.0, deadline - time.monotonic()))
                if worker.process.is_alive():
                    worker.process.kill()
                    worker.process.join()
            self_end.close()
            lifeline.close()

    def _send(self, workers: list[_Worker], queue: TaskQueue, held: int) -> int:
        """Sends items while they fit: one to each idle worker first, then one more to each (DEPTH); the new total."""
        for depth in range(1, DEPTH + 1):
            for worker in workers:
                if len(worker.tasks) >= depth:
                    continue
                task = queue.peek()
                sent = any(w.tasks for w in workers)
                if task is None or (sent and self.budget is not None and held + task.cost > self.budget):
                    return held
                worker.send(queue.pop())
                held += task.cost
        return held

    def _run(self, start: Callable[[], _Worker], workers: list[_Worker], queue: TaskQueue) -> Iterator[Outcome[T, R]]:
        held = 0
        while True:
            held = self._send(workers, queue, held)
            busy = [w for w in workers if w.tasks]
            if not busy:
                return
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
            for worker in busy:
                if worker.conn not in ready and worker.process.sentinel not in ready:
                    continue
                alive, reply = worker.reply()
                if alive:
                    task = worker.tasks.popleft()
                    held -= task.cost
                    yield (Outcome(task.item, crash=f"the worker raised {reply.error}") if isinstance(reply, _Raised)
                           else Outcome(task.item, reply))
                    continue
                culprit, *behind = worker.tasks
                held -= sum(task.cost for task in worker.tasks)
                how = worker.death()
                workers[workers.index(worker)] = start()
                queue.back(behind)
                if culprit.attempt < ATTEMPTS:
                    queue.again(culprit)
                else:
                    yield Outcome(culprit.item, crash=f"the worker process died {ATTEMPTS} times running it ({how})")


def _context(preload: tuple[str, ...]) -> BaseContext:
    """A fork server where the platform has one: workers forked from a small process that has imported only what they
    run, not from this one (threads, the report, its libraries); a fresh interpreter per worker elsewhere."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))  # takes effect when the server starts: once per process
    return context


def start_fork_server(preload: Sequence[str]) -> BaseContext:
    """The context workers start from. A fork server starts now, if the platform has one, without waiting for its
    imports, so that they overlap with whatever this process does before its first pool. It starts with SIGINT
    blocked, as its workers do: Ctrl-C reaches the whole process group, and only this process acts on it."""
    context = _context(tuple(preload))
    if context.get_start_method() == "forkserver":
        resource_tracker.ensure_running()  # first: it unblocks SIGINT once it has started its own process
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            forkserver.ensure_running()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return context


def stop_fork_server() -> None:
    """End this process's fork server, if it started one, and wait for it: a run shorter than the server's own imports
    (every case served from the fact cache) must not leave it behind. SIGTERM first, since a server still importing
    reads no request to stop; every worker has been stopped by then. The resource tracker is left to end by itself
    when this process does: stopping it here would wait on every other process that holds its pipe."""
    server = forkserver._forkserver
    pid = getattr(server, "_forkserver_pid", None)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        server._stop()  # private, but the only way to wait for the server


def _serve(conn: Connection, lifeline: Connection, fn: Callable[[Any], Any]) -> None:
    """A worker's life: run each item received and send back its result, until the pipe or the lifeline ends."""
    threading.Thread(target=_exit_with_parent, args=(lifeline,), daemon=True).start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = pickle.dumps(fn(item), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # a bug or an unpicklable result: this item's outcome, not the worker's end
            reply = pickle.dumps(_Raised(f"{type(exc).__name__}: {exc}"))
        try:
            conn.send_bytes(reply)
        except OSError:  # the parent is gone (killed): nobody wants the result
            return


def _exit_with_parent(lifeline: Connection) -> None:
    """End this worker the moment the main process is gone, however it went (SIGKILL leaves it no time to stop its
    workers): it holds the other end of the lifeline and never writes, so end of file means it has exited."""
    try:
        lifeline.poll(None)
    finally:
        os._exit(1)
