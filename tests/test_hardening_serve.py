"""The served dashboard: no import-by-URL, loopback by default.

Before the hardening a plain GET of ``/components/<module>/...`` imported any installed module
named in the URL (``this`` printed the Zen of Python in the log), and ``kgvsf serve`` listened
on every interface.
"""

from __future__ import annotations

import importlib
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kgvsf_explore.cli import build_parser

serve_mod = importlib.import_module("kgvsf_explore.app.serve")  # the package exports serve()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, r.reason
        except urllib.error.HTTPError as err:
            return err.code, err.reason
        except (ConnectionError, urllib.error.URLError):
            time.sleep(0.1)  # the server thread is still starting
    raise AssertionError(f"no answer from {url}")


@pytest.fixture
def server(monkeypatch, tmp_path: Path):
    import panel as pn

    monkeypatch.setattr(serve_mod, "shared_inputs", lambda cube, weights: (None, None))
    monkeypatch.setattr(serve_mod, "session_app",
                        lambda cube, weights: pn.pane.Markdown("stand-in dashboard"))
    probe = tmp_path / "kgvsf_url_probe.py"
    flag = tmp_path / "imported"
    probe.write_text(f"open({str(flag)!r}, 'w').write('imported')\nclass X:\n    __css__ = []\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    port = _free_port()
    thread = serve_mod.serve(port=port, show=False, threaded=True, torch_threads=None)
    try:
        yield f"http://127.0.0.1:{port}", flag
    finally:
        thread.stop()
        sys.modules.pop("kgvsf_url_probe", None)


def test_a_url_cannot_import_a_module(server) -> None:
    base, flag = server
    assert _get(f"{base}/")[0] == 200
    status, reason = _get(f"{base}/components/kgvsf_url_probe/X/__css__/a.css")
    assert status == 404 and reason == "Not a loaded component module"
    assert not flag.exists() and "kgvsf_url_probe" not in sys.modules
    assert _get(f"{base}/components/antigravity/X/__css__/a.css")[0] == 404
    assert "antigravity" not in sys.modules
    # a loaded panel module still reaches Panel's own checks (which refuse unlisted files)
    status, reason = _get(f"{base}/components/panel.layout.base/Column/__css__/nope.css")
    assert reason != "Not a loaded component module"


def test_loopback_is_the_default_and_other_addresses_warn(monkeypatch) -> None:
    args = build_parser().parse_args(["serve", "--no-show"])
    assert args.address == "127.0.0.1"
    calls = []
    monkeypatch.setattr(serve_mod, "shared_inputs", lambda cube, weights: None)
    import panel as pn

    monkeypatch.setattr(pn, "serve", lambda *a, **k: calls.append(k))
    with pytest.warns(UserWarning, match="anyone who can reach port 5006"):
        serve_mod.serve(address="0.0.0.0", show=False, torch_threads=None)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        serve_mod.serve(show=False, torch_threads=None)
    assert calls[-1]["address"] == "127.0.0.1"
    assert calls[-1]["extra_patterns"][0][0] == "/components/(.*)"
