"""follow.Follow: a broken watch is followed by a whole read and a watch from its revision."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import pytest

from etcdhcp.etcd import EtcdError
from etcdhcp.follow import Follow


class FakeEtcd:
    """Watches that deliver `batches` in turn, the first one breaking after its changes."""

    def __init__(self, batches: list[list[int]]) -> None:
        self.batches = batches
        self.starts: list[int] = []
        self.revision = 0
        self.reloads = 0
        self.seen: list[int] = []
        self.idle = threading.Event()  # the last watch is open and has nothing more to say
        self.cancelled = threading.Event()

    def watch(self, start: int) -> tuple[Iterator[int], Callable[[], None]]:
        self.starts.append(start)
        batch = self.batches.pop(0) if self.batches else []
        broken = bool(self.batches)

        def changes() -> Iterator[int]:
            yield from batch
            if broken:
                raise EtcdError("watch compacted")
            self.idle.set()
            self.cancelled.wait(10)

        return changes(), self.cancelled.set

    def change(self, revision: int) -> None:
        self.seen.append(revision)
        self.revision = revision

    def reload(self) -> None:
        self.reloads += 1
        self.revision = 20


def test_a_broken_watch_is_read_again_and_watched_from_there(
    caplog: pytest.LogCaptureFixture,
) -> None:
    etcd = FakeEtcd([[3, 4], [21]])
    follow = Follow(
        "things",
        logging.getLogger("t"),
        etcd.watch,
        lambda: etcd.revision,
        etcd.change,
        etcd.reload,
    )
    thread = threading.Thread(target=follow.run, daemon=True)
    with caplog.at_level(logging.WARNING):
        thread.start()
        assert etcd.idle.wait(10)
    follow.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert etcd.starts == [1, 21]  # after the whole read at 20, not after the last change
    assert etcd.seen == [3, 4, 21]
    assert etcd.reloads == 1
    assert "watch on things broke (watch compacted); re-reading" in caplog.text


def test_a_stop_while_the_watch_opens_cancels_it() -> None:
    etcd = FakeEtcd([[]])

    def watch(start: int) -> tuple[Iterator[int], Callable[[], None]]:
        opened = etcd.watch(start)
        follow.stop()  # before run() holds the new watch's cancel
        return opened

    follow = Follow("things", logging.getLogger("t"), watch, lambda: 0, etcd.change, etcd.reload)
    thread = threading.Thread(target=follow.run, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    assert etcd.cancelled.is_set()
    assert etcd.reloads == 0
