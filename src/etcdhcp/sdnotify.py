"""The systemd notify protocol (``Type=notify``, ``WatchdogSec=``) without libsystemd.

Outside systemd every call is a harmless no-op, so callers need no checks.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(state: str) -> bool:
    """Send ``state`` (e.g. "READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=...") to
    ``$NOTIFY_SOCKET``. Returns whether it was sent; False outside systemd. Never raises:
    a lost notification must not take the daemon down."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        address = "\0" + address[1:]  # Linux abstract namespace
    elif not address.startswith("/"):
        if address:
            log.debug("unsupported NOTIFY_SOCKET %r", address)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), address)
    except OSError as exc:
        log.debug("sd_notify %r to %r failed: %s", state, address, exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between "WATCHDOG=1" pings: half of ``$WATCHDOG_USEC``, as sd_watchdog_enabled(3)
    recommends; None when systemd expects no pings from this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec:
        return None
    try:
        if pid and int(pid) != os.getpid():
            return None
        interval = int(usec) / 2e6
    except ValueError:
        log.debug("ignoring invalid WATCHDOG_USEC=%r / WATCHDOG_PID=%r", usec, pid)
        return None
    return interval if interval > 0 else None
