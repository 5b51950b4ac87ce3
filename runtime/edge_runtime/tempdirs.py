"""Temporary folders (unpacked archives) that are removed on exit, Ctrl-C, SIGTERM and SIGHUP.

A TemporaryDirectory is removed when it is collected or at interpreter exit, but the default
action of SIGTERM (systemd, `docker stop`, `kill`) ends the process without either: each stop
left a whole unpacked bundle in /tmp. While such a folder exists, and only where the process
still has the default handler for SIGTERM/SIGHUP, a handler removes the folders and re-delivers
the signal with the default action, so the process still dies of that signal, as its parent
expects. A handler the application installed itself is left alone (it decides how to exit, and
a normal exit removes the folders). Handlers can only be set from the main thread; a bundle
loaded from another thread gets the at-exit cleanup only. SIGKILL cannot be caught.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import weakref

PREFIX = "edge-bundle-"
SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None)

_lock = threading.Lock()
_live: dict[str, None] = {}  # folders to remove on a signal (an ordered set)
_ours: set[int] = set()  # signals whose handler we installed


def temporary_folder() -> tempfile.TemporaryDirectory:
    folder = tempfile.TemporaryDirectory(prefix=PREFIX)
    with _lock:
        _live[folder.name] = None
    weakref.finalize(folder, _forget, folder.name)
    _install()
    return folder


def _forget(name: str) -> None:
    with _lock:
        _live.pop(name, None)
        empty = not _live
    if empty:
        _uninstall()


def _install() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in SIGNALS:
        if signum in _ours:
            continue
        try:
            if signal.getsignal(signum) == signal.SIG_DFL:
                signal.signal(signum, _on_signal)
                _ours.add(signum)
        except (ValueError, OSError):  # not the main interpreter, or an unsupported signal here
            pass


def _uninstall() -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # harmless: with no folder left, the handler only re-delivers the signal
    for signum in list(_ours):
        try:
            if signal.getsignal(signum) is _on_signal:
                signal.signal(signum, signal.SIG_DFL)
            _ours.discard(signum)
        except (ValueError, OSError):
            pass


def _on_signal(signum, frame) -> None:
    for name in list(_live):
        shutil.rmtree(name, ignore_errors=True)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
