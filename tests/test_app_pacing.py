"""Flow control of a served page's display updates (:mod:`kgvsf_explore.app.pacing`)."""

from __future__ import annotations

import threading

from bokeh.document import Document

from kgvsf_explore.app.pacing import DisplayPublisher, PageBeat


class FakeDoc(Document):
    """A Bokeh document whose scheduled callbacks the test runs by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.ticks: list = []
        self.timeouts: list = []

    def add_next_tick_callback(self, fn):  # noqa: D102
        self.ticks.append(fn)

    def add_timeout_callback(self, fn, ms):  # noqa: D102
        self.timeouts.append((fn, ms))

    def run_ticks(self) -> None:
        while self.ticks:
            self.ticks.pop(0)()


def _page_answers(beat: PageBeat) -> None:
    """What the page's CustomJS does once a batch is applied: hand the counter back."""
    beat.ack.tags = list(beat.model.tags)


def test_updates_published_together_run_in_one_batch() -> None:
    doc = FakeDoc()
    pub = DisplayPublisher(doc)
    seen: list[int] = []
    for i in range(5):
        pub(lambda i=i: seen.append(i))
    assert len(doc.ticks) == 1 and seen == []  # one callback scheduled for all five
    doc.run_ticks()
    assert seen == [0, 1, 2, 3, 4] and pub.batches == 1


def test_one_batch_in_flight_until_the_page_confirms_it() -> None:
    doc, beat = FakeDoc(), PageBeat()
    pub = DisplayPublisher(doc, beat, timeout_s=3.0)
    values: list[int] = []
    pub(lambda: values.append(1))
    doc.run_ticks()
    assert values == [1] and beat.model.tags == [1] and doc.timeouts[-1][1] == 3000
    for v in (2, 3, 4):  # the page is still drawing batch 1: these wait, then go together
        pub(lambda v=v: values.append(v))
    doc.run_ticks()
    assert values == [1] and pub.batches == 1
    _page_answers(beat)
    doc.run_ticks()
    assert values == [1, 2, 3, 4] and pub.batches == 2 and beat.model.tags == [2]


def test_a_page_that_does_not_answer_gets_the_next_batch_after_the_timeout() -> None:
    doc, beat = FakeDoc(), PageBeat()
    pub = DisplayPublisher(doc, beat)
    values: list[int] = []
    pub(lambda: values.append(1))
    doc.run_ticks()
    pub(lambda: values.append(2))
    doc.run_ticks()
    assert values == [1]
    first_timeout = doc.timeouts[0][0]
    first_timeout()  # no answer within ACK_TIMEOUT_S
    doc.run_ticks()
    assert values == [1, 2]
    first_timeout()  # an old batch's timeout changes nothing
    _page_answers(beat)  # nor a late answer to it
    assert doc.ticks == []


def test_a_failing_update_does_not_drop_the_others(caplog) -> None:
    doc = FakeDoc()
    pub = DisplayPublisher(doc)
    values: list[int] = []

    def boom() -> None:
        raise RuntimeError("broken pane")

    pub(boom)
    pub(lambda: values.append(1))
    doc.run_ticks()
    assert values == [1] and "updating the dashboard failed" in caplog.text


def test_publishing_from_many_threads_loses_nothing() -> None:
    doc, beat = FakeDoc(), PageBeat()
    pub = DisplayPublisher(doc, beat)
    values: list[int] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        for i in range(50):
            def add(v=k * 100 + i) -> None:
                with lock:
                    values.append(v)
            pub(add)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    while len(values) < 200:
        doc.run_ticks()
        _page_answers(beat)
        doc.run_ticks()
    assert sorted(values) == sorted(k * 100 + i for k in range(4) for i in range(50))
    # each thread's updates in its own order
    for k in range(4):
        mine = [v for v in values if v // 100 == k]
        assert mine == sorted(mine)


def test_the_page_carries_the_beat() -> None:
    import panel as pn

    from kgvsf_explore.app._layout import page_beat
    from kgvsf_explore.app.explorer import Explorer

    ex = Explorer()
    layout = ex.panel()
    beat = page_beat(layout)
    assert beat is not None
    panes = layout.select(pn.pane.Bokeh)
    assert any(p.object is beat.model for p in panes)
    assert beat.model.js_property_callbacks["change:tags"][0].args["ack"] is beat.ack
    ex.close()
