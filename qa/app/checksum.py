"""The archive's MD5, computed in a process of its own while the scan runs: hashing a 24 GB download takes minutes,
about as long as reading it, so it is done beside the scan rather than after it."""

from __future__ import annotations

import multiprocessing
from ctypes import c_longlong
from multiprocessing.connection import Connection

from qa.output.progress import ChecksumProgress
from qa.scan.archive import ChecksumFailed, file_md5

POLL_S = 0.2


def _hash(path: str, size: int, done: c_longlong, result: Connection) -> None:
    def advance(count: int) -> None:
        done.value = count

    try:
        result.send(("computed", file_md5(path, size, advance)))
    except ChecksumFailed as exc:
        result.send(("unreadable", str(exc)))


class Checksum:
    """The MD5 of a file's first `size` bytes, being computed by a process started on creation."""

    def __init__(self, path: str, size: int) -> None:
        context = multiprocessing.get_context()
        self.size = size
        self._done = context.Value("q", 0, lock=False)
        self._result, sender = context.Pipe(duplex=False)
        self._process = context.Process(target=_hash, args=(path, size, self._done, sender), name="tsqa-md5",
                                        daemon=True)
        self._process.start()
        sender.close()

    @property
    def done(self) -> int:
        """Bytes hashed so far."""
        return int(self._done.value)

    def wait(self, progress: ChecksumProgress | None = None) -> tuple[str, str]:
        """('computed', the MD5) or ('unreadable', why), once the process has finished; `progress` hears of the bytes
        hashed meanwhile."""
        while not self._result.poll(POLL_S):
            if not self._process.is_alive() and not self._result.poll():
                return "unreadable", f"the hashing process died (exit code {self._process.exitcode})"
            if progress is not None:
                progress(self.done, self.size)
        outcome = self._result.recv()
        if progress is not None:
            progress(self.size, self.size)
        self._process.join()
        return outcome

    def stop(self) -> None:
        """End the process if it still runs (the scan failed or was interrupted)."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._result.close()

