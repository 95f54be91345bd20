"""Thread plumbing: a producer thread ahead of the consumer (``_Background``), a consumer thread (``_Sink``), batches
of frames (``_batches``), and the cleanup that removes a half-written output (``_streams``)."""

from __future__ import annotations

import queue
import threading
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

from fsth.animate.drivers import _Frame
from fsth.video import VideoWriter, put_unless


class _Background:
    """Iterate ``items`` in a thread, ahead of the consumer by at most ``depth`` items; errors re-raised here."""

    _END = object()

    def __init__(self, items: Iterable, depth: int = 4):
        self._items = items
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._error = exc
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:  # a generator: run its cleanup (close its video reader) in this thread
                close()
        self._put(self._END)

    def _put(self, item) -> bool:
        return put_unless(self._queue, item, self._stop.is_set)

    def __iter__(self) -> Iterator:
        while True:
            item = self._queue.get()
            if item is self._END:
                if self._error is not None:
                    raise self._error
                return
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class _Sink:
    """Call ``fn(item)`` for each ``put`` item in a thread (at most ``depth`` waiting); ``close`` waits for it and
    re-raises its error, which also surfaces at the next ``put``."""

    _END = object()

    def __init__(self, fn: Callable, depth: int = 4):
        self._fn = fn
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if self._error is None:
                try:
                    self._fn(item)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                    self._error = exc

    def put(self, item) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def close(self) -> None:
        self._queue.put(self._END)
        self._thread.join()
        if self._error is not None:
            raise self._error


@contextmanager
def _streams(frames: _Background, writer: VideoWriter | None) -> Iterator[None]:
    """On any error (Ctrl-C too) the output is removed, never left half-written; the producer thread is stopped
    in any case."""
    try:
        yield
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        frames.close()


def _batches(items: Iterable[_Frame], size: int) -> Iterator[list[_Frame]]:
    batch: list[_Frame] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
