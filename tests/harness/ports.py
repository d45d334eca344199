"""Free loopback TCP ports, so that two test runs on one machine never clash.

Asking the kernel for port 0 and closing the socket is racy: the kernel hands the same port to the
next bind(0) and to outgoing connections (their local ports come from the same ephemeral range), so
two concurrent test processes could both start a server on it. Ports are therefore taken from below
the ephemeral range, where the kernel never assigns one by itself, and reserved across processes by
an exclusive lock on a file per port, held until this process exits. A reserved port that still
cannot be bound (a server of an earlier run, a socket in TIME_WAIT) is skipped.
"""
import fcntl
import os
import random
import socket
import tempfile

_FIRST, _LAST = 20000, 32000
_LOCK_DIR = os.path.join(tempfile.gettempdir(), "procnode-test-ports")
_held = {}  # port -> open lock file, kept for the life of the process


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(v) for v in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port():
    os.makedirs(_LOCK_DIR, exist_ok=True)
    low, high = _ephemeral_range()
    candidates = [p for p in range(_FIRST, _LAST) if (p < low or p > high) and p not in _held]
    if not candidates:
        raise RuntimeError("no loopback port left outside the ephemeral range %d-%d" % (low, high))
    start = random.randrange(len(candidates))
    for port in candidates[start:] + candidates[:start]:
        lock = open(os.path.join(_LOCK_DIR, "%d.lock" % port), "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        if _bindable(port):
            _held[port] = lock
            return port
        lock.close()
    raise RuntimeError("no free loopback port between %d and %d" % (_FIRST, _LAST))
