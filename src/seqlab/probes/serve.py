"""``seqlab serve RUN``: a local web page to probe a saved model's sensitivity.

The page (``static/index.html``, plain HTML and JavaScript) lets the user type a sentence, click
a token, pick a replacement and see, position by position, the model's predictions before and
after the swap, the KL divergence between them and which top-1 predictions flipped; or the
influence matrix of the whole sentence. The numbers come from :mod:`seqlab.probes.sensitivity`
through a small JSON API:

==========================  ============================================================
``GET  /api/info``          family, task, vocabulary size and list, number of outputs
``POST /api/tokenize``      ``{"text"}`` -> ``{"tokens", "alternatives"}``: the tokens as
                            the model reads them; lm: per token, the model's top guesses
``POST /api/sensitivity``   ``{"text" | "tokens", "position", "replacement"}`` ->
                            :meth:`SensitivityResult.to_dict`
``POST /api/matrix``        ``{"text" | "tokens", "replacements"?, "seed"?}`` ->
                            :meth:`InfluenceResult.to_dict`
==========================  ============================================================

An infinite KL (``q_j(k) = 0 < p_j(k)``) travels as ``null``.

A bad request (empty text, a position out of range, a token the model does not know) is
answered with status 400 and ``{"error": message}``; nothing ever answers with a traceback.

The server is the standard library's :class:`http.server.ThreadingHTTPServer`, bound to a
loopback address only: it serves one user on their own machine. It also refuses requests
whose ``Host`` header is not a loopback name (a web page elsewhere cannot reach it through a
DNS name that resolves to 127.0.0.1) and POSTs that are not ``application/json`` (a page on
another origin cannot send those without a CORS preflight, which this server never grants).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from seqlab.errors import ConfigError, SeqlabError
from seqlab.probes.results import json_ready

__all__ = ["make_server", "check_loopback", "ProbeApp", "serve", "MAX_BODY", "MAX_TOKENS"]

MAX_BODY = 64 * 1024  # bytes of JSON a request may carry
MAX_TOKENS = 256  # the longest sentence the page probes (the influence matrix is n forward passes)
MAX_VOCAB_LISTED = 20000  # /api/info lists at most this many vocabulary entries


class BadRequest(Exception):
    """A request the API cannot answer; ``status`` goes back with ``{"error": message}``."""

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = status


def check_loopback(host: str) -> str:
    """``host`` if it names this machine only (``localhost``, 127.0.0.0/8 or ``::1``), else a
    :class:`ConfigError`: the page has no authentication, so it must never face a network."""
    if host.lower() == "localhost":
        return host
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"seqlab serve binds to a loopback address only (127.0.0.1, ::1 or localhost), found {host!r}: "
            "the page has no authentication and must not be reachable from a network"
        )
    return host


def _vocabulary(model: Any) -> list[str]:
    """The model's input tokens a user can pick as a replacement (the reserved ``<pad>``,
    ``<unk>``, ... ids left out of the list; typing one still works)."""
    from seqlab.probes.sensitivity import input_vocabulary

    try:
        vocab = input_vocabulary(model)
    except SeqlabError:
        return []
    return [t for t in vocab if t not in _SPECIALS]


_SPECIALS = frozenset(("<pad>", "<unk>", "<bos>", "<eos>", "<mask>"))
N_ALTERNATIVES = 8  # lm: the model's own top guesses offered as replacements for each token


class ProbeApp:
    """The API without HTTP: each method takes the request's JSON object and returns the
    answer's; a :class:`BadRequest` or :class:`SeqlabError` is the client's fault. Calls into
    the model hold one lock (a model is not safe to run from two threads at once)."""

    def __init__(self, model: Any) -> None:
        for name in ("tokenize", "distributions", "output_labels"):
            if not callable(getattr(model, name, None)):
                raise SeqlabError(f"{type(model).__name__} has no {name}(): the page needs a model the "
                                  "sensitivity probe can read")
        self.model = model
        self.n_labels = len(model.output_labels())  # fails here, not on the page, for a task it cannot probe
        self.vocabulary = _vocabulary(model)
        self._lock = threading.Lock()

    # --- request helpers ------------------------------------------------------------------
    def _tokens(self, body: dict[str, Any]) -> list[str]:
        """The tokens the model sees for ``text`` (or a ``tokens`` list, normalised)."""
        if "tokens" in body:
            value = body["tokens"]
            if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                raise BadRequest("'tokens' must be a list of strings")
            if not value:
                raise BadRequest("the token list is empty")
        else:
            value = body.get("text")
            if not isinstance(value, str):
                raise BadRequest("send 'text' (a string) or 'tokens' (a list of strings)")
            if not value.strip():
                raise BadRequest("the text is empty: type a sentence first")
        if len(value) > MAX_BODY:
            raise BadRequest("the text is too long for this page")
        with self._lock:
            toks = [str(t) for t in self.model.tokenize(value)]
        if not toks:
            raise BadRequest("the text has no tokens the model can read")
        if len(toks) > MAX_TOKENS:
            raise BadRequest(f"the text has {len(toks)} tokens; this page probes at most {MAX_TOKENS}")
        return toks

    @staticmethod
    def _int(body: dict[str, Any], key: str, default: int | None, lo: int, hi: int, what: str) -> int:
        v = body.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise BadRequest(f"{key!r} must be an integer ({what})")
        if not lo <= v <= hi:
            raise BadRequest(f"{key} {v} is out of range: {what} runs from {lo} to {hi}")
        return v

    def _replacement(self, body: dict[str, Any]) -> str:
        tok = body.get("replacement")
        if not isinstance(tok, str) or not tok.strip():
            raise BadRequest("'replacement' must be a token (a non-empty string): pick one from the list")
        return tok.strip()  # the probe checks it against the vocabulary and names close ones

    def _alternatives(self, toks: list[str]) -> list[list[str]] | None:
        """lm only: for each token i, the model's most likely tokens at i given tokens[:i]
        (row i - 1 of its next-token distributions; none for i = 0), the token itself excluded."""
        if not self.model.task.causal or len(toks) < 2:
            return None
        with self._lock:
            (dist,) = self.model.distributions([toks])  # (T, V)
            labels = self.model.output_labels()
        k = min(N_ALTERNATIVES + 6, dist.shape[-1])
        out: list[list[str]] = [[]]
        for i in range(1, len(toks)):
            best = dist[i - 1].topk(k).indices.tolist()
            out.append([labels[b] for b in best if labels[b] not in _SPECIALS and labels[b] != toks[i]][:N_ALTERNATIVES])
        return out

    # --- endpoints ------------------------------------------------------------------------
    def info(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "family": str(getattr(self.model, "family", type(self.model).__name__)),
            "task": self.model.task.name,
            "causal": bool(self.model.task.causal),  # what the task declares: the page reads these, not its name
            "rows": self.model.task.probe_rows,  # "token" or "sequence"
            "vocab_size": len(self.vocabulary),
            "vocabulary": self.vocabulary[:MAX_VOCAB_LISTED],
            "vocabulary_truncated": len(self.vocabulary) > MAX_VOCAB_LISTED,
            "n_labels": self.n_labels,
            "max_tokens": MAX_TOKENS,
        }

    def tokenize(self, body: dict[str, Any]) -> dict[str, Any]:
        toks = self._tokens(body)
        return {"tokens": toks, "alternatives": self._alternatives(toks)}

    def sensitivity(self, body: dict[str, Any]) -> dict[str, Any]:
        from seqlab.probes.sensitivity import sensitivity

        toks = self._tokens(body)
        pos = self._int(body, "position", None, 0, len(toks) - 1, f"the index of one of the {len(toks)} tokens")
        rep = self._replacement(body)
        with self._lock:
            result = sensitivity(self.model, toks, position=pos, replacement=rep)
        return result.to_dict()

    def matrix(self, body: dict[str, Any]) -> dict[str, Any]:
        from seqlab.probes.sensitivity import influence_matrix

        toks = self._tokens(body)
        k = self._int(body, "replacements", 4, 1, 16, "the number of random replacements per position")
        seed = self._int(body, "seed", 0, 0, 2**31 - 1, "the seed of the random replacements")
        with self._lock:
            result = influence_matrix(self.model, toks, replacements=k, seed=seed)
        return result.to_dict()


def _page() -> bytes:
    return resources.files("seqlab.probes").joinpath("static/index.html").read_bytes()


class _Handler(BaseHTTPRequestHandler):
    server: _ProbeServer
    server_version = "seqlab-serve"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy",
                         "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                         "connect-src 'self'; frame-ancestors 'none'")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        body = json.dumps(json_ready(obj), ensure_ascii=False, allow_nan=False, default=_jsonable).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message, "status": status})

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").strip()
        if host.startswith("["):  # [::1]:port
            name = host[1 : host.find("]")] if "]" in host else host
        else:
            name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        try:
            check_loopback(name)
        except ConfigError:
            return False
        return True

    def _guarded(self, fn: Callable[[], None]) -> None:
        try:
            if not self._host_ok():
                raise BadRequest("this server answers requests to a loopback host only", HTTPStatus.FORBIDDEN)
            fn()
        except ConnectionError:  # the client went away mid-request: nothing to answer, nothing to print
            self.close_connection = True
        except BadRequest as e:
            self._error(e.status, str(e))
        except SeqlabError as e:  # the model refused the input: the client's fault, said plainly
            self._error(HTTPStatus.BAD_REQUEST, str(e))
        except Exception as e:  # a bug: say so in JSON, keep the traceback on the terminal
            if self.server.verbose:
                traceback.print_exc()
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error ({type(e).__name__}): {e}")

    def do_GET(self) -> None:  # noqa: N802 (the base class's name)
        self._guarded(self._get)

    def do_HEAD(self) -> None:  # noqa: N802
        self._guarded(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._guarded(self._post)

    def _get(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, _page(), "text/html; charset=utf-8")
        elif path == "/api/info":
            self._json(HTTPStatus.OK, self.server.app.info())
        elif path.startswith("/api/"):
            raise BadRequest(f"{path} takes POST" if path in _ROUTES else f"no such endpoint: {path}",
                             HTTPStatus.METHOD_NOT_ALLOWED if path in _ROUTES else HTTPStatus.NOT_FOUND)
        else:
            raise BadRequest(f"not found: {path}", HTTPStatus.NOT_FOUND)

    def _post(self) -> None:
        path = self.path.split("?", 1)[0]
        route = _ROUTES.get(path)
        if route is None:
            raise BadRequest(f"no such endpoint: {path}", HTTPStatus.NOT_FOUND)
        ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            raise BadRequest("send the request body as application/json", HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BadRequest("bad Content-Length") from None
        if length > MAX_BODY:
            raise BadRequest(f"the request body is over {MAX_BODY} bytes", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            body = json.loads(raw.decode("utf-8")) if raw else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BadRequest(f"the request body is not valid JSON: {e}") from None
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        self._json(HTTPStatus.OK, route(self.server.app, body))


_ROUTES: dict[str, Callable[[ProbeApp, dict[str, Any]], dict[str, Any]]] = {
    "/api/tokenize": ProbeApp.tokenize,
    "/api/sensitivity": ProbeApp.sensitivity,
    "/api/matrix": ProbeApp.matrix,
}


def _jsonable(obj: Any) -> Any:
    """Numbers from numpy or torch in a result: plain Python values."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


class _ProbeServer(ThreadingHTTPServer):
    """Threads per request. The listen backlog is 128, not socketserver's 5: a page fires several
    requests at once and a few users' pages more, and a full backlog resets connections. A client
    that goes away mid-response (closed tab, aborted fetch) is normal: it is not an error and
    prints nothing."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: ProbeApp, verbose: bool) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.app = app
        self.verbose = verbose

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError):  # BrokenPipe, ConnectionReset/Aborted
            return
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        addr = self.server_address
        host = addr[0].decode() if isinstance(addr[0], bytes) else str(addr[0])
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.server_port}/"


def make_server(model: Any, host: str = "127.0.0.1", port: int = 8765, *, verbose: bool = False) -> _ProbeServer:
    """A server for ``model`` bound to ``host:port`` (``port=0``: a free port; read it back from
    ``server.server_address`` or ``server.url``). Not started: call ``serve_forever()`` (in a
    thread, for tests) and ``shutdown()`` then ``server_close()`` to stop. ``host`` must be a
    loopback address (:func:`check_loopback`)."""
    check_loopback(host)
    if host.lower() == "localhost":
        host = "127.0.0.1"
    return _ProbeServer((host, port), ProbeApp(model), verbose)


def serve(run: str, host: str = "127.0.0.1", port: int = 8765, open_browser: bool = True) -> int:
    """Load the run, serve its page until Ctrl-C; prints the URL (and opens it when asked)."""
    from seqlab.models.registry import load

    check_loopback(host)
    model = load(run)
    try:
        server = make_server(model, host, port, verbose=True)
    except OSError as e:
        raise SeqlabError(f"cannot listen on {host}:{port}: {e.strerror or e}; pick another --port") from None
    print(f"[seqlab] serving {run} ({model.family}, {model.task.name}) at {server.url}  (Ctrl-C stops)", flush=True)
    if open_browser:
        import webbrowser

        try:
            opened = webbrowser.open(server.url)
        except webbrowser.Error:
            opened = False
        if not opened:
            print("[seqlab] no browser found here: open the URL above yourself", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("[seqlab] stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0
