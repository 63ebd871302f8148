"""``seqlab serve``: the JSON API against the sensitivity probe called directly (the oracle), its
errors, loopback-only binding, and the page end to end in headless Chromium.

The browser test needs Debian's ``chromium`` and ``chromium-driver`` (and the ``selenium``
package): without them it skips, unless ``SEQLAB_REQUIRE_BROWSER=1`` (set by ``.ci/run``),
where it fails instead. Selenium is given the driver's path, so it never downloads one.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NoReturn

import pytest

from seqlab.cli import main
from seqlab.errors import ConfigError, SeqlabError
from seqlab.models.registry import build
from seqlab.probes.sensitivity import influence_matrix, sensitivity
from seqlab.probes.serve import MAX_BODY, check_loopback, make_server
from tests_support import ner_data

SENTENCES = ["the cat sat on the mat", "the dog sat on the log", "a cat saw a dog", "the dog saw the cat",
             "a dog sat on a mat", "the cat saw the log"]
TRAIN = {"epochs": 1, "batch_size": 8, "lr": 0.02, "progress": False}


@pytest.fixture(scope="module")
def lm() -> Any:
    """A tiny trained word-level LSTM language model."""
    model = build("lstm", "lm", task_options={"tokenizer": "word", "block_size": 16}, train=TRAIN,
                  d_model=8, hidden_size=16, bidirectional=False)
    return model.fit([{"text": s} for s in SENTENCES * 6])


@pytest.fixture(scope="module")
def tagger() -> Any:
    """A tiny trained bidirectional LSTM tagger."""
    model = build("lstm", "labeling", train=TRAIN, d_model=8, hidden_size=16, bidirectional=True)
    return model.fit(ner_data(40))


def _start(model: Any) -> Iterator[str]:
    server = make_server(model, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.url.rstrip("/")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def lm_url(lm: Any) -> Iterator[str]:
    yield from _start(lm)


@pytest.fixture(scope="module")
def tagger_url(tagger: Any) -> Iterator[str]:
    yield from _start(tagger)


def request(url: str, path: str, body: Any = None, *, raw: bytes | None = None,
            content_type: str = "application/json", headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """(status, parsed JSON) of a GET (no body) or POST; error statuses too."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url + path, data=data, method="GET" if data is None else "POST",
                                 headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            status, text = resp.status, resp.read().decode()
            ctype = resp.headers["Content-Type"]
    except urllib.error.HTTPError as e:
        status, text, ctype = e.code, e.read().decode(), e.headers["Content-Type"]
    assert ctype.startswith("application/json"), (status, ctype, text[:200])
    assert "Traceback" not in text
    return status, json.loads(text)


def assert_same_result(got: Any, want: Any, where: str = "") -> None:
    """Equal JSON, floats to 1e-9 (the server passes the probe's numbers through)."""
    if isinstance(want, float):
        assert isinstance(got, float) and got == pytest.approx(want, rel=1e-9, abs=1e-12), where
    elif isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), where
        for key in want:
            assert_same_result(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same_result(g, w, f"{where}[{i}]")
    else:
        assert got == want, where


# --- the API -----------------------------------------------------------------------------------
def test_info_and_page(lm: Any, lm_url: str) -> None:
    status, info = request(lm_url, "/api/info")
    assert status == 200
    vocab = lm.task.codec.fitted_vocab.itos
    words = sorted({w for s in SENTENCES for w in s.split()})
    assert info["family"] == "lstm" and info["task"] == "lm" and info["causal"] is True and info["rows"] == "token"
    assert sorted(info["vocabulary"]) == words and info["vocab_size"] == len(words)
    assert info["n_labels"] == len(vocab)
    with urllib.request.urlopen(lm_url + "/", timeout=20) as resp:
        assert resp.headers["Content-Type"].startswith("text/html")
        page = resp.read().decode()
    for element in ('id="text"', 'id="tokens"', 'id="replacement-pick"', 'id="result"', 'id="matrix"'):
        assert element in page


def test_tokenize_and_alternatives(lm: Any, lm_url: str) -> None:
    text = "the cat saw a dog"
    status, got = request(lm_url, "/api/tokenize", {"text": text})
    assert status == 200 and got["tokens"] == lm.tokenize(text) == text.split()
    # alternatives[i]: the model's most likely next tokens after tokens[:i], brute-force sorted
    (dist,) = lm.distributions([got["tokens"]])
    labels = lm.output_labels()
    assert got["alternatives"][0] == []
    for i in range(1, len(got["tokens"])):
        ranked = sorted(range(len(labels)), key=lambda k: -float(dist[i - 1, k]))
        want = [labels[k] for k in ranked if not labels[k].startswith("<") and labels[k] != got["tokens"][i]]
        assert got["alternatives"][i] == want[: len(got["alternatives"][i])]
        assert len(got["alternatives"][i]) == min(8, len(want))


@pytest.mark.parametrize("which", ["lm", "tagger"])
def test_sensitivity_matches_the_probe(which: str, request_fixture: Any) -> None:
    model, url = request_fixture(which)
    text, position, replacement = (("the cat sat on the mat", 1, "dog") if which == "lm"
                                   else ("Ann saw the city", 2, "Rome"))
    status, got = request(url, "/api/sensitivity", {"text": text, "position": position, "replacement": replacement})
    assert status == 200
    want = sensitivity(model, model.tokenize(text), position=position, replacement=replacement).to_dict()
    assert_same_result(got, want)
    assert max(got["kl"]) > 0
    if which == "lm":  # a causal model: outputs before the swap cannot move
        assert got["kl"][:position] == [0.0] * position
    # the same request as a token list gives the same answer
    status, again = request(url, "/api/sensitivity",
                            {"tokens": model.tokenize(text), "position": position, "replacement": replacement})
    assert status == 200 and again == got


def test_matrix_matches_the_probe(lm: Any, lm_url: str) -> None:
    text = "a dog sat on a mat"
    status, got = request(lm_url, "/api/matrix", {"text": text, "replacements": 3, "seed": 5})
    assert status == 200
    assert_same_result(got, influence_matrix(lm, lm.tokenize(text), replacements=3, seed=5).to_dict())
    status, default = request(lm_url, "/api/matrix", {"text": text})
    assert status == 200 and default["replacements"] == [list(r) for r in influence_matrix(lm, text).replacements]


@pytest.mark.parametrize(("path", "body", "status", "message"), [
    ("/api/tokenize", {"text": "   "}, 400, "empty"),
    ("/api/tokenize", {}, 400, "'text'"),
    ("/api/tokenize", {"tokens": "the cat"}, 400, "list of strings"),
    ("/api/sensitivity", {"text": "the cat sat", "position": 3, "replacement": "dog"}, 400, "out of range"),
    ("/api/sensitivity", {"text": "the cat sat", "position": -1, "replacement": "dog"}, 400, "out of range"),
    ("/api/sensitivity", {"text": "the cat sat", "position": "1", "replacement": "dog"}, 400, "integer"),
    ("/api/sensitivity", {"text": "the cat sat", "position": 1, "replacement": "zebra"}, 400, "not in the model's vocabulary"),
    ("/api/sensitivity", {"text": "the cat sat", "position": 1}, 400, "'replacement'"),
    ("/api/sensitivity", {"text": "", "position": 0, "replacement": "dog"}, 400, "empty"),
    ("/api/matrix", {"text": "the cat", "replacements": 0}, 400, "out of range"),
    ("/api/matrix", [1, 2], 400, "JSON object"),
    ("/api/nothing", {}, 404, "no such endpoint"),
])
def test_bad_requests_are_json_errors(lm_url: str, path: str, body: Any, status: int, message: str) -> None:
    got_status, got = request(lm_url, path, body)
    assert got_status == status and got["status"] == status
    assert message in got["error"], got["error"]


def test_malformed_requests(lm_url: str) -> None:
    status, got = request(lm_url, "/api/tokenize", raw=b"{not json")
    assert status == 400 and "not valid JSON" in got["error"]
    status, got = request(lm_url, "/api/tokenize", {"text": "the cat"}, content_type="text/plain")
    assert status == 415 and "application/json" in got["error"]
    status, got = request(lm_url, "/api/tokenize", raw=b'{"text": "' + b"a" * MAX_BODY + b'"}')
    assert status == 413
    status, got = request(lm_url, "/api/sensitivity")  # a GET on a POST endpoint
    assert status == 405
    # a page elsewhere reaching the server through a DNS name: refused (DNS rebinding)
    status, got = request(lm_url, "/api/info", headers={"Host": "attacker.example:8765"})
    assert status == 403 and "loopback" in got["error"]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.1", "example.com", ""])
def test_refuses_non_loopback_hosts(lm: Any, host: str) -> None:
    with pytest.raises(ConfigError, match="loopback"):
        make_server(lm, host, 0)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "LocalHost", "::1"])
def test_loopback_hosts_are_accepted(host: str) -> None:
    assert check_loopback(host) == host


def test_refuses_a_model_it_cannot_probe() -> None:
    class Seq2Seq:  # stands in for an encoder-decoder: the probe's methods refuse its task
        family, task = "gru", SimpleNamespace(name="generation")

        def tokenize(self, *args: Any) -> list[str]:
            raise SeqlabError("output distributions are for the tasks lm, labeling, classification")

        distributions = tokenize
        output_labels = tokenize

    with pytest.raises(SeqlabError, match="output distributions"):
        make_server(Seq2Seq(), "127.0.0.1", 0)
    with pytest.raises(SeqlabError, match="has no tokenize"):
        make_server(object(), "127.0.0.1", 0)


def test_cli_serve(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["serve", "--help"])
    assert e.value.code == 0 and "--no-browser" in capsys.readouterr().out
    assert main(["serve", str(tmp_path), "--host", "0.0.0.0", "--no-browser"]) == 2
    assert "loopback" in capsys.readouterr().err


@pytest.fixture(scope="module")
def request_fixture(request: pytest.FixtureRequest) -> Any:
    def get(which: str) -> tuple[Any, str]:
        return request.getfixturevalue(which), request.getfixturevalue(f"{which}_url")
    return get


# --- the page in headless Chromium -------------------------------------------------------------
def _browser_paths() -> tuple[str, str] | str:
    """(chromium, chromedriver) or the reason they cannot be used."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    browser = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                    if p and os.path.isfile(p)), None)
    driver = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver") if p and os.path.isfile(p)), None)
    if not browser or not driver:
        return "chromium or chromedriver is missing (Debian: apt-get install chromium chromium-driver)"
    return browser, driver


def _missing_browser(reason: str) -> NoReturn:
    """Skip, or fail where CI requires the browser test to run."""
    if os.environ.get("SEQLAB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"SEQLAB_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def test_a_missing_browser_skips_unless_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os.path, "isfile", lambda path: False)
    reason = _browser_paths()
    assert isinstance(reason, str) and "chromium" in reason
    monkeypatch.delenv("SEQLAB_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception):
        _missing_browser(reason)
    monkeypatch.setenv("SEQLAB_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="SEQLAB_REQUIRE_BROWSER"):
        _missing_browser(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    found = _browser_paths()
    if isinstance(found, str):
        _missing_browser(found)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--disable-extensions", "--no-first-run", "--window-size=1200,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=found[1]), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def shown(text: str, value: float | None, digits: int) -> bool:
    """The page shows ``value`` rounded to ``digits`` decimals (an infinite KL as "inf")."""
    if value is None:
        return text == "inf"
    return text == f"{value:.{digits}f}" or abs(float(text) - value) <= 0.5 * 10**-digits + 1e-12


def test_page_end_to_end(browser: Any, lm: Any, lm_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 20)
    browser.get(lm_url + "/")
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    assert "lstm" in browser.find_element(By.ID, "model-info").text

    text = "the dog saw the cat"
    box = browser.find_element(By.ID, "text")
    box.send_keys(text)
    browser.find_element(By.ID, "tokenize").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#tokens .chip")) == 5)
    chips = browser.find_elements(By.CSS_SELECTOR, "#tokens .chip")
    assert [c.get_attribute("data-token") for c in chips] == lm.tokenize(text)

    position, replacement = 1, "log"
    chips[position].click()
    wait.until(ec.element_to_be_clickable((By.ID, "run")))
    Select(browser.find_element(By.ID, "replacement-pick")).select_by_value(replacement)
    assert browser.find_element(By.ID, "replacement").get_attribute("value") == replacement
    browser.find_element(By.ID, "run").click()
    wait.until(lambda d: d.find_element(By.ID, "result-section").get_attribute("data-key") == f"{position}:{replacement}")

    oracle = sensitivity(lm, lm.tokenize(text), position=position, replacement=replacement)
    rows = browser.find_elements(By.CSS_SELECTOR, "#result tbody tr")
    assert len(rows) == len(oracle.outputs)
    for j, row in enumerate(rows):
        cell = {c.get_attribute("class").split()[0]: c.text for c in row.find_elements(By.TAG_NAME, "td")}
        assert cell["output"] == oracle.outputs[j]
        assert cell["top-before"] == oracle.top_before[j] and cell["top-after"] == oracle.top_after[j]
        assert shown(cell["p-before"], oracle.p_before[j], 3) and shown(cell["p-after"], oracle.p_after[j], 3)
        assert shown(cell["kl"], oracle.kl[j], 4), (j, cell["kl"], oracle.kl[j])
        assert shown(cell["tv"], oracle.tv[j], 4)
        assert ("flipped" in row.get_attribute("class").split()) == oracle.flipped[j]
        assert (cell["flip"] == "yes") == oracle.flipped[j]
    strip = browser.find_elements(By.CSS_SELECTOR, "#kl-strip td")
    assert [shown(td.text, oracle.kl[j], 3) for j, td in enumerate(strip)] == [True] * len(oracle.kl)
    assert [float(td.get_attribute("data-value")) for td in strip] == pytest.approx(list(oracle.kl), abs=1e-12)

    # the whole sentence: the influence matrix with 2 replacements per position
    k_box = browser.find_element(By.ID, "matrix-k")
    k_box.clear()
    k_box.send_keys("2")
    browser.find_element(By.ID, "matrix-run").click()
    wait.until(lambda d: d.find_element(By.ID, "matrix-section").get_attribute("data-key") == text)
    inf = influence_matrix(lm, lm.tokenize(text), replacements=2, seed=0)
    cells = browser.find_elements(By.CSS_SELECTOR, "#matrix tbody td")
    assert len(cells) == inf.kl.numel()
    for td in cells:
        i, j = int(td.get_attribute("data-i")), int(td.get_attribute("data-j"))
        assert shown(td.text, float(inf.kl[i, j]), 3), (i, j, td.text, float(inf.kl[i, j]))

    # a token the model does not know: the page says so, the result stays
    rep_box = browser.find_element(By.ID, "replacement")
    rep_box.clear()
    rep_box.send_keys("zebra")
    browser.find_element(By.ID, "run").click()
    wait.until(lambda d: "not in the model's vocabulary" in d.find_element(By.ID, "error").text)
    assert browser.find_element(By.ID, "result-section").get_attribute("data-key") == f"{position}:{replacement}"


# --- many clients, and clients that go away --------------------------------------------------

def test_a_burst_of_clients_is_not_reset(lm: Any, lm_url: str) -> None:
    """socketserver's default backlog of 5 reset 1-2% of requests at 20 concurrent clients."""
    from concurrent.futures import ThreadPoolExecutor

    from seqlab.probes.serve import _ProbeServer

    assert _ProbeServer.request_queue_size >= 64
    with ThreadPoolExecutor(48) as pool:
        statuses = list(pool.map(lambda _: request(lm_url, "/api/info")[0], range(96)))
    assert statuses == [200] * 96


def test_a_client_that_hangs_up_prints_no_traceback(lm: Any, capfd: pytest.CaptureFixture[str]) -> None:
    """An aborted fetch used to print three BrokenPipe tracebacks on the server's terminal."""
    import io
    import socket as socketlib

    from seqlab.probes.serve import _Handler, make_server

    server = make_server(lm, port=0, verbose=True)
    try:
        handler = _Handler.__new__(_Handler)  # drive one request's error path without a socket
        handler.server = server
        handler.command, handler.path, handler.request_version = "GET", "/api/info", "HTTP/1.1"
        handler.headers = {"Host": "127.0.0.1"}  # type: ignore[assignment]
        handler.requestline = "GET /api/info HTTP/1.1"
        handler.client_address = ("127.0.0.1", 1)

        class Gone(io.RawIOBase):
            def write(self, b: Any) -> int:
                raise BrokenPipeError(32, "Broken pipe")

        handler.wfile = Gone()  # type: ignore[assignment]
        handler._headers_buffer = []  # type: ignore[attr-defined]
        handler.do_GET()
        assert handler.close_connection
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except ConnectionResetError:
            server.handle_error(socketlib.socket(), ("127.0.0.1", 1))
    finally:
        server.server_close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "BrokenPipe" not in err and "ConnectionReset" not in err
