"""Flow control between the server and one browser page: never send more than the page draws.

A served dashboard computes on the server and draws in the browser. When a page cannot keep up
(a slow laptop, several busy tabs on few cores, a control driven faster than it is drawn), every
update the server sends still has to be applied and laid out by the page, one after the other:
measured with four tabs driven as fast as Playwright can on 2 cores, pages fell a minute behind
what their controls said, and looked frozen.

:class:`DisplayPublisher` is the publisher (:meth:`Explorer.set_publisher`) of a served session.
It applies the explorer's display updates on the document's thread, all those waiting in one
batch under Panel's :func:`~panel.io.hold` (one message, one layout pass in the page), and keeps
at most one batch in flight: each batch ends by setting a counter on a hidden model of the page
(:class:`PageBeat`); a ``CustomJS`` callback in the page hands the counter back once the browser
has applied the batch (a ``setTimeout`` after the message's task), and only then is the next
batch sent. Updates that arrive meanwhile wait and are applied together, so a page that is
behind gets the newest state, not every state in between. A page that does not answer within
:data:`ACK_TIMEOUT_S` (a hidden tab, a reload) gets the next batch anyway.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

#: Seconds to wait for the page to confirm a batch before the next one is sent anyway.
ACK_TIMEOUT_S = 2.0

_LOG = logging.getLogger(__name__)

# In the page: once the batch that set ``sent.tags`` has been applied (the rest of its
# message's task has run), hand the counter back through ``ack.tags`` (synced to the server).
_ACK_JS = """
const seq = cb_obj.tags.length ? cb_obj.tags[0] : null;
if (seq !== null) setTimeout(() => { ack.tags = [seq]; }, 0);
"""


class PageBeat:
    """The hidden Bokeh models through which a page confirms each batch of updates.

    ``model`` goes on the page (invisible, no size); the server sets ``model.tags = [n]`` at
    the end of batch ``n``, and the page answers by setting ``ack.tags = [n]``.
    """

    def __init__(self) -> None:
        from bokeh.models import CustomJS, Spacer

        self.ack = Spacer(width=0, height=0, margin=0, visible=False, name="kgvsf-ack")
        self.model = Spacer(width=0, height=0, margin=0, visible=False, name="kgvsf-beat")
        self.model.js_on_change("tags", CustomJS(args={"ack": self.ack}, code=_ACK_JS))

    def on_ack(self, fn: Callable[[int], None]) -> None:
        """Call ``fn(n)`` (on the document's thread) when the page confirms batch ``n``."""
        def changed(attr: str, old: Any, new: Any) -> None:
            if new:
                fn(int(new[0]))

        self.ack.on_change("tags", changed)


class DisplayPublisher:
    """Apply display updates on ``doc``'s thread in batches, one batch in flight per page.

    Parameters
    ----------
    doc
        The session's Bokeh document.
    beat
        The page's :class:`PageBeat`; None sends each batch as soon as it is ready (no flow
        control).
    timeout_s
        Seconds to wait for the page's confirmation before sending the next batch anyway.

    Call the instance with a function (from any thread); it runs later on the document's
    thread, with ``doc`` as Panel's current document.
    """

    def __init__(self, doc: Any, beat: PageBeat | None = None,
                 timeout_s: float = ACK_TIMEOUT_S) -> None:
        self.doc, self.beat, self.timeout_s = doc, beat, timeout_s
        self._lock = threading.Lock()
        self._queue: list[Callable[[], None]] = []
        self._scheduled = False  # a run is scheduled on the document's thread
        self._in_flight: int | None = None  # the batch the page has not confirmed yet
        self._seq = 0
        self.batches = 0  # batches sent (for tests and benchmarks)
        if beat is not None:
            beat.on_ack(self._confirmed)

    def __call__(self, fn: Callable[[], None]) -> None:
        with self._lock:
            self._queue.append(fn)
            if self._scheduled or self._in_flight is not None:
                return  # the scheduled run, or the page's confirmation, takes it along
            self._scheduled = True
        self._schedule(self._run)

    def _schedule(self, fn: Callable[[], None]) -> None:
        try:  # the one Document method Bokeh allows from any thread
            self.doc.add_next_tick_callback(fn)
        except Exception:  # noqa: BLE001 - the session is gone: nothing to show it to
            pass

    def _run(self) -> None:
        from panel.io.document import hold
        from panel.io.state import set_curdoc

        with self._lock:
            self._scheduled = False
            if self._in_flight is not None or not self._queue:
                return
            batch, self._queue = self._queue, []
            if self.beat is not None:
                self._seq += 1
                self._in_flight = self._seq
            seq = self._seq
        try:
            with set_curdoc(self.doc), hold(self.doc):
                for fn in batch:
                    try:
                        fn()
                    except Exception:  # noqa: BLE001 - one failed update must not drop others
                        _LOG.exception("updating the dashboard failed")
                if self.beat is not None:
                    self.beat.model.tags = [seq]  # last: the page answers once it is all applied
            self.batches += 1
        finally:  # even if the batch failed, the next one is never held up for good
            if self.beat is not None:
                try:
                    self.doc.add_timeout_callback(lambda: self._confirmed(seq),
                                                  int(1000 * self.timeout_s))
                except Exception:  # noqa: BLE001 - the session is gone
                    pass

    def _confirmed(self, seq: int) -> None:
        """Batch ``seq`` is drawn (or its wait timed out): send what waits, if anything."""
        with self._lock:
            if self._in_flight != seq:
                return  # an old batch's timeout, or a repeated answer
            self._in_flight = None
            if not self._queue or self._scheduled:
                return
            self._scheduled = True
        self._schedule(self._run)
