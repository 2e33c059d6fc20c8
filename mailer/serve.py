"""One process for a small installation: the web app, the scheduler and one worker.

`mailer serve` starts the scheduler first (so a second scheduler against the same
database refuses before anything else happens), then a worker thread, then the web
app under uvicorn in the main thread. SIGINT or SIGTERM stops uvicorn; then the
worker finishes the messages on the wire and records them, and the scheduler
stops and gives its lock back. Scaled-out installations run `mailer web`,
`mailer scheduler` and any number of `mailer worker` processes instead.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from mailer.compose import Root
from mailer.errors import PermanentError
from mailer.settings import Settings

log = logging.getLogger("mailer.serve")


class ServeError(PermanentError):
    """A part of the one-process service is missing or cannot start."""


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for X-Forwarded-For and -Proto: believed only from the proxies
    in `MAILER_TRUSTED_PROXIES`, never by default.

    uvicorn's own default trusts 127.0.0.1, so any local client (or a proxy on this
    machine passing the header through) could name any address and start afresh with
    the per-address login throttle after every few guesses.
    """
    if not settings.trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": settings.trusted_proxies}


@dataclass
class Service:
    """Runs the three parts; `run()` returns after a signal, everything stopped."""

    root: Root
    host: str
    port: int
    worker: bool = True
    stopped_by: list[int] = field(default_factory=list)

    def _app(self) -> Any:
        try:
            from mailer.web.app import create_app
        except ImportError as exc:  # the web app is another area's; say what is missing
            raise ServeError(
                f"the web app cannot be loaded ({exc}); try `mailer scheduler`"
            ) from exc
        return create_app(self.root)

    def run(self) -> None:
        import uvicorn

        app = self._app()
        listening = self._listen()  # a port in use is an error before anything starts
        scheduler = self.root.scheduler()
        try:
            scheduler.start()
        except BaseException:
            listening.close()
            raise
        stop = threading.Event()
        thread: threading.Thread | None = None
        worker: Any = None
        try:
            if self.worker:
                worker = self.root.worker()
                thread = threading.Thread(target=worker.run, args=(stop,), name="worker")
                thread.start()
            self._install_handlers()
            config = uvicorn.Config(
                app,
                host=self.host,
                port=self.port,
                log_level="info",
                lifespan="on",
                **proxy_options(self.root.settings),
            )
            server = uvicorn.Server(config)
            log.info("serving http://%s:%s, with the scheduler and a worker", self.host, self.port)
            server.run(sockets=[listening])  # until SIGINT/SIGTERM; uvicorn re-raises it
        finally:
            stop.set()
            if thread is not None:
                thread.join()
            if worker is not None and hasattr(worker, "close"):
                worker.close()
            scheduler.stop()
            listening.close()
            log.info("stopped")

    def _listen(self) -> socket.socket:
        """The web app's socket, bound now so that a port in use is one clear line."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            return socket.create_server((self.host, self.port), family=family)
        except OSError as exc:
            raise ServeError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None

    def _install_handlers(self) -> None:
        """After uvicorn's own shutdown it re-raises the signal it caught; with these
        handlers that only records it, so the worker and scheduler still stop cleanly
        (the default SIGTERM action would end the process on the spot)."""
        if threading.current_thread() is not threading.main_thread():
            return

        def note(signum: int, _frame: FrameType | None) -> None:
            self.stopped_by.append(signum)

        signal.signal(signal.SIGTERM, note)
        signal.signal(signal.SIGINT, note)
