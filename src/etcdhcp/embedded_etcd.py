"""Run Debian's ``etcd`` binary as a private child process.

The daemon uses this for ``--etcd.embedded`` (a single-node etcd whose data lives under
``<state-dir>/etcd``) and the tests use it for their fixtures, so both exercise the same
start/health/stop logic. Only the standard library is used: the module must import under
Debian's ``/usr/bin/python3`` as well as in the venv.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from types import TracebackType

__all__ = ["EtcdProcess", "EtcdStartError"]

# Flags that every embedded etcd gets: without compaction a lease-churning DHCP server
# makes etcd's database grow without bound and throughput collapse (see FIELD-NOTES).
COMPACTION_ARGS: tuple[str, ...] = (
    "--auto-compaction-mode",
    "periodic",
    "--auto-compaction-retention",
    "1h",
)

_LOG_TAIL_BYTES = 4000
_SYSTEMD_NOTIFY_VARS = frozenset({"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"})
_PR_SET_PDEATHSIG = 1

# Run inside a network namespace to poll /health there: the test process (or daemon)
# may not be able to reach a URL that only exists inside the namespace.
_HEALTH_SNIPPET = (
    "import sys, urllib.request\n"
    "try:\n"
    "    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))\n"
    "    r = opener.open(sys.argv[1], timeout=float(sys.argv[2]))\n"
    "    sys.stdout.write(r.read().decode('utf-8', 'replace'))\n"
    "except Exception as e:\n"
    "    sys.stdout.write('error: %r' % (e,))\n"
)


class EtcdStartError(RuntimeError):
    """etcd did not become healthy; the message carries the tail of its log."""


def _set_parent_death_signal() -> None:
    """Ask the kernel to SIGTERM etcd if the thread that started it dies.

    Keeps a crashed daemon or a killed pytest from leaving an etcd behind that holds its
    ports and data directory. Best effort: ignored where prctl is unavailable.
    """
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _log_summary(tail: str) -> str:
    """The reason from etcd's last fatal/error log line, so errors read in one line."""
    for line in reversed(tail.splitlines()):
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("level") in ("fatal", "panic", "error"):
            msg = str(doc.get("msg", ""))
            err = doc.get("error")
            return f"{msg}: {err}" if err else msg
    return ""


def _parse_health(body: str) -> bool:
    """True when an etcd /health body says ``"health": "true"``."""
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    return isinstance(doc, dict) and str(doc.get("health")).lower() == "true"


class EtcdProcess:
    """One etcd member running as a child process: a single-member cluster by default.

    ``netns`` runs it inside a network namespace (``ip netns exec NS etcd ...``); the
    health check then runs inside that namespace too. For a member of a larger cluster
    give ``initial_cluster`` (``name=peer-url,...``) and the same ``cluster_token`` to
    every member, and start them together (``start(wait=False)``, then
    ``wait_healthy``): no member is healthy before a quorum of them runs.
    """

    def __init__(
        self,
        data_dir: str,
        client_urls: Sequence[str],
        peer_url: str,
        name: str = "etcdhcp",
        binary: str = "etcd",
        extra_args: Sequence[str] = (),
        log_path: str | None = None,
        netns: str | None = None,
        initial_cluster: str | None = None,
        cluster_token: str | None = None,
    ) -> None:
        if isinstance(client_urls, str):
            client_urls = [client_urls]
        if not client_urls:
            raise ValueError("EtcdProcess needs at least one client URL")
        self.data_dir = os.path.abspath(data_dir)
        self.client_urls: tuple[str, ...] = tuple(client_urls)
        self.peer_url = peer_url
        self.name = name
        self.binary = binary
        self.extra_args: tuple[str, ...] = tuple(extra_args)
        # Beside the data dir, not in it: etcd warns about foreign files in its data dir.
        self.log_path = log_path or self.data_dir.rstrip("/") + ".log"
        self.netns = netns
        self.initial_cluster = initial_cluster or f"{name}={peer_url}"
        self.cluster_token = cluster_token or f"etcdhcp-{name}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # -- properties ---------------------------------------------------------------

    @property
    def client_url(self) -> str:
        """The first client URL: the one health checks and callers use."""
        return self.client_urls[0]

    @property
    def pid(self) -> int | None:
        """PID of the running etcd (the ``ip`` wrapper execs into it), or None."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the child process exists and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def argv(self) -> list[str]:
        """The full command line start() runs; public so logs and tests can show it."""
        urls = ",".join(self.client_urls)
        cmd = [
            self.binary,
            "--name",
            self.name,
            "--data-dir",
            self.data_dir,
            "--listen-client-urls",
            urls,
            "--advertise-client-urls",
            urls,
            "--listen-peer-urls",
            self.peer_url,
            "--initial-advertise-peer-urls",
            self.peer_url,
            "--initial-cluster",
            self.initial_cluster,
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            self.cluster_token,
            "--logger",
            "zap",
            "--log-outputs",
            "stderr",
            *COMPACTION_ARGS,
            *self.extra_args,
        ]
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        return cmd

    # -- lifecycle ----------------------------------------------------------------

    def start(self, timeout: float = 20.0, wait: bool = True) -> EtcdProcess:
        """Start etcd and wait until ``/health`` says true; EtcdStartError otherwise.

        ``wait`` False returns once the process runs (see ``wait_healthy``). etcd gets
        SIGTERM from the kernel if the calling *thread* dies, so call this from a thread
        that lives as long as etcd should (the main thread, a pytest fixture).
        """
        if self.running:
            raise RuntimeError(f"etcd {self.name} is already running (pid {self.pid})")
        # ETCD_* variables would clash with our flags: etcd exits on a shadowed setting.
        # systemd's notify variables are the daemon's: etcd would send its own READY=1.
        env = {
            k: v
            for k, v in os.environ.items()
            if (not k.startswith("ETCD_") or k == "ETCD_UNSUPPORTED_ARCH")
            and k not in _SYSTEMD_NOTIFY_VARS
        }
        try:
            os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
            os.makedirs(os.path.dirname(os.path.abspath(self.log_path)), exist_ok=True)
            log = open(self.log_path, "ab")  # noqa: SIM115 - closed right below
        except OSError as e:
            raise EtcdStartError(f"cannot prepare etcd's data or log file: {e}") from e
        with log:
            self._log_offset = log.tell()
            try:
                self._proc = subprocess.Popen(
                    self.argv(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    # Own session: a terminal's Ctrl-C reaches the parent only, which
                    # then stops etcd in its own order.
                    start_new_session=True,
                    preexec_fn=_set_parent_death_signal,
                )
            except OSError as e:
                raise EtcdStartError(f"cannot run {self.argv()[0]!r}: {e}") from e
        if wait:
            self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 20.0) -> None:
        """Poll /health until true; stop etcd and raise EtcdStartError on exit or timeout."""
        try:
            self._wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        delay = 0.05
        last = "no answer yet"
        # Bounded twice: by the deadline and by a count (in case the clock misbehaves).
        for _ in range(max(10, int(timeout / 0.05) + 10)):
            code = self._proc.poll()
            if code is not None:
                tail = self.log_tail()
                reason = _log_summary(tail)
                raise EtcdStartError(
                    f"etcd exited with status {code} while starting"
                    f"{': ' + reason if reason else ''}\n"
                    f"command: {' '.join(self.argv())}\nlog tail ({self.log_path}):\n{tail}"
                )
            ok, last = self.health(timeout=1.0)
            if ok:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        tail = self.log_tail()
        raise EtcdStartError(
            f"etcd did not become healthy at {self.client_url} within {timeout:g}s "
            f"(last /health: {last})\ncommand: {' '.join(self.argv())}\n"
            f"log tail ({self.log_path}):\n{tail}"
        )

    def health(self, timeout: float = 1.0) -> tuple[bool, str]:
        """Ask ``<client_url>/health`` once; returns (healthy, body or error)."""
        url = self.client_url.rstrip("/") + "/health"
        if self.netns:
            probe = [sys.executable, "-c", _HEALTH_SNIPPET, url, str(timeout)]
            try:
                out = subprocess.run(
                    ["ip", "netns", "exec", self.netns, *probe],
                    capture_output=True,
                    text=True,
                    timeout=timeout + 10,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                return False, "health probe timed out"
            body = out.stdout.strip() or out.stderr.strip()
        else:
            try:
                # No proxy: http_proxy in the environment must not capture a local etcd.
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                with opener.open(url, timeout=timeout) as resp:
                    body = resp.read().decode("utf-8", "replace")
            except urllib.error.HTTPError as e:  # 503 carries a body too
                body = e.read().decode("utf-8", "replace")
            except (OSError, ValueError) as e:
                return False, f"error: {e!r}"
        return _parse_health(body), body

    def log_tail(self, limit: int = _LOG_TAIL_BYTES) -> str:
        """The last ``limit`` bytes etcd wrote since the latest start()."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                end = f.tell()
                f.seek(max(self._log_offset, end - limit))
                return f.read().decode("utf-8", "replace")
        except OSError as e:
            return f"(cannot read {self.log_path}: {e})"

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM etcd, SIGKILL it after ``timeout``, and reap it; returns its status."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
        self._proc = None
        return proc.returncode

    # -- context manager ----------------------------------------------------------

    def __enter__(self) -> EtcdProcess:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"EtcdProcess({self.name!r}, {self.client_url}, {state})"
