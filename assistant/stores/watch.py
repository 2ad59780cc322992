"""A running server notices a build another process published, and swaps it in.

``BuildWatcher`` asks the store every ``interval`` seconds which build is published (the
PostgreSQL store: a primary-key lookup; the local store: reading a symlink). When it is not the
one the service answers from, it calls ``service.reload()``, which assembles the new parts and
swaps one reference: requests in flight finish on the old build, new ones use the new build, none
is dropped. A service that could not load (the database down, no build yet) is retried on the
same beat, so a worker started before the database or the first index becomes ready by itself.
(``publish`` also sends ``NOTIFY assistant_builds``; a poll is used because it needs no held
connection and survives database restarts without re-subscribing.)
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)


class BuildWatcher(threading.Thread):
    def __init__(self, service, interval: float):
        super().__init__(name="build-watcher", daemon=True)
        self.service = service
        self.interval = interval
        self._stop_event = threading.Event()
        self._last_warning = 0.0

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.check()

    def check(self) -> bool:
        """One look; True when a build was (re)loaded."""
        service = self.service
        try:
            if not service.ready:
                service.load()
                log.info("loaded build %s", service.build_id)
                return True
            published = service.published_build_id()
            if published is not None and published != service.build_id:
                old = service.build_id
                service.reload()
                log.info("switched from build %s to build %s", old, service.build_id)
                return True
        except Exception as exc:  # the database down, a build that cannot be read: try again next beat
            now = time.monotonic()
            if now - self._last_warning > 30:
                self._last_warning = now
                log.warning("build check failed (retrying every %.1f s): %s", self.interval, exc)
        return False
