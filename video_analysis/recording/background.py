"""Futures answered on daemon threads, so a slow database never holds up a camera's loop or a stop."""

from __future__ import annotations

import threading
from concurrent.futures import Future


def in_background(call) -> Future:
    """``call()`` on a daemon thread: a stop never waits for it (a database held by a migration answers in
    minutes, and the process must exit at SIGTERM all the same)."""
    future: Future = Future()

    def run():
        try:
            future.set_result(call())
        except Exception as exc:  # noqa: BLE001 - handed to whoever reads the future
            future.set_exception(exc)

    threading.Thread(target=run, name="earlier-state", daemon=True).start()
    return future


def one_camera(everyone: Future, camera: str) -> Future:
    """The future state of one camera, from the future state of every camera."""
    one: Future = Future()
    everyone.add_done_callback(lambda done: one.set_result(
        (done.result() or {}).get(camera) if done.exception() is None else None))
    return one
