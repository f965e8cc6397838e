"""Following a prefix in etcd: one watch loop for the views that keep up with it.

The scope view (liveconfig.py) and the host index (livehosts.py) both watch their
prefix from the revision they last read, and read everything again when the watch
breaks (etcd unreachable, the revision compacted): a watch that breaks may have
missed changes, and only a whole read brings the view back to a known revision.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from etcdhcp.etcd import EtcdError

T = TypeVar("T")

# start revision -> (the changes from it, cancel)
Watch = Callable[[int], tuple[Iterable[T], Callable[[], None]]]


@dataclass(eq=False)
class Follow(Generic[T]):
    """Hands each change of a watch to `change`; `run` is a thread's target, `stop` ends it.

    The watch starts after `revision()`, which `change` and `reload` move on. When it
    breaks, `reload` reads everything again after a backoff (1 s, doubled up to 30 s
    while etcd keeps failing, back to 1 s once a change comes through), and the watch
    starts over. Lines are logged under the owner's `log`, naming `what` is followed.
    """

    what: str
    log: logging.Logger
    watch: Watch[T]
    revision: Callable[[], int]
    change: Callable[[T], None]
    reload: Callable[[], None]
    stopping: threading.Event = field(default_factory=threading.Event)
    _cancel: Callable[[], None] | None = field(default=None, init=False)

    def run(self) -> None:
        backoff = 1.0
        while not self.stopping.is_set():
            try:
                changes, self._cancel = self.watch(self.revision() + 1)
                if self.stopping.is_set():  # stop() ran before the watch existed
                    self._cancel()
                for change in changes:
                    self.change(change)
                    backoff = 1.0
            except EtcdError as exc:
                if self.stopping.is_set():
                    return
                self.log.warning("watch on %s broke (%s); re-reading", self.what, exc)
            except Exception:  # the view must keep following etcd whatever happens
                self.log.exception("following %s failed", self.what)
            if self.stopping.wait(backoff):
                return
            backoff = min(backoff * 2, 30.0)
            try:
                self.reload()
            except EtcdError as exc:
                self.log.debug("re-reading %s failed: %s", self.what, exc)

    def stop(self) -> None:
        """Make `run` return: now, or once the watch it is opening exists."""
        self.stopping.set()
        if self._cancel is not None:
            self._cancel()
