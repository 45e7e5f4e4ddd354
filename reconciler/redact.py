"""The one scrubber every output passes through: secrets, URL passwords and terminal tricks.

Every secret value we hold (the token, a password in the server URL, each resolved `${…}`/file
reference and each literal writeOnly value) is registered once in `SCRUBBER`; `scrub()` replaces
any of them, in the forms JSON, repr and URLs give them, with `(redacted)`. Whatever we never held
is caught by shape: URL userinfo (`https://user:pw@host`) and `Bearer …` are always cut, and
`redact_keys()` hides values under keys named like secrets (`api_key`, `password`, `secret_key`,
`api-key`, `headers.Authorization`…) in what a server sends. `ScrubbingStream` wraps stdout and
stderr (cli/app.py), so CLI text, JSON, logs and tracebacks all pass here; /healthz, saved plans
and exported files call `scrub()` themselves. `neutralise()` makes server-sent text safe for a
terminal (escape sequences, C1 controls, bidi overrides); `json_safe()` does it inside JSON text.
Core: pure apart from the process-wide registry.
"""

from __future__ import annotations

import io
import json
import re
import threading
import unicodedata
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "(redacted)"
SENSITIVE = "(sensitive)"
MIN_SECRET = 4
"""Shorter values are not scrubbed from text: a 2-character secret would cut holes everywhere."""

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"<>]*@")
# Not the words that follow these in prose: "used for Basic Auth" (the real server's WordPress
# `username` description), "a Bearer token".
_BEARER = re.compile(
    r"(?i)\b(bearer|basic)(\s+)(?!(?:auth|authentication|authorization|token|scheme|credentials?)\b)"
    r"[A-Za-z0-9._~+/=\-]{4,}"
)
_QUOTED_PAIR = re.compile(
    r"""(?P<q>\\?['"])(?P<key>[^'"\\\n]{1,80})(?P=q)(?P<sep>[ \t]{0,3}:[ \t]{0,3})"""
    r"""(?P<v>\\?['"])(?P<value>(?:\\.|[^\\\n…])*?)(?P<end>(?P=v)|…|(?=\n)|\Z)"""
)
"""A quoted `"key": "value"` or `'key': 'value'` pair (JSON, a Python repr, a validation message
quoting a mapping, a server's error body), escaped quotes too, or one cut short at `…` or at the
end of its line (a table cell clipped, a message truncated to 200 characters): its value is cut
when the key looks secret, whoever wrote it."""
_REPR_KEY = re.compile(r"'(?P<key>[^'\\\n]{1,80})':[ ]?(?=[{\[])")
"""A Python repr's `'key': {` or `'key': [` (what jsonschema and pydantic messages quote): a
mapping or list under a secret-looking key is cut whole. Single quotes only: a JSON document (a
schema's `"api_key": {"type": …}`) is not a value to cut."""
_MAX_CUT = 4096
_SECRET_KEY = re.compile(
    r"(?:^|_)(?:api_?keys?|passwords?|passwd|pwd|passphrase|secrets?|secret_?key|access_?key|private_?key"
    r"|token|auth_?token|authorization|proxy_authorization|credentials?|creds|cookies?|set_cookie|bearer"
    r"|headers)(?:_?[0-9]+)?$"
)
"""The last word(s) of a secret's name, in snake case: `webhook_secret`, `api_key_2`, and `headers`
(every HTTP header may carry a credential; the server itself marks Weaviate's `headers` secret)."""
_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
"""camelCase and PascalCase word starts, acronyms kept whole: `OpenAIApiKey` → `Open_AI_Api_Key`."""
# What a terminal must never receive raw from someone else's text: C0 controls but tab and newline
# (ESC starts escape sequences, CR overwrites a line), DEL, C1 controls (0x9b is a one-byte CSI),
# bidi embeddings/overrides/isolates and marks (trojan-source reordering), line/paragraph separators.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_STYLE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
"""What `write_styled` lets through: CSI sequences (colour, clear line, cursor up, hide cursor) and
carriage returns, which the terminal layer (cli/terminal.py) draws with. No OSC (titles, links)."""


def looks_secret_key(key: object) -> bool:
    """`api_key`, `api-key`, `apiKey`, `OpenAIApiKey`, `password`, `applicationPassword`,
    `webhook_secret`, `access_token`, `Authorization`, `headers`… but not `max_tokens` or
    `tokenizer`."""
    if not isinstance(key, str):
        return False
    snake = _WORD_BREAK.sub("_", key)
    return bool(_SECRET_KEY.search(re.sub(r"[^a-z0-9]+", "_", snake.lower()).strip("_")))


def redact_keys(value: Any) -> Any:
    """The value with everything under a secret-looking key replaced by `(sensitive)`."""
    if isinstance(value, dict):
        return {
            k: (SENSITIVE if looks_secret_key(k) and v is not None else redact_keys(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_keys(v) for v in value]
    return value


def _forms(secret: str) -> set[str]:
    """The ways a value shows up in our outputs: as is, JSON-escaped, repr'd, percent-encoded."""
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
    }
    try:
        forms |= {quote(secret, safe=""), quote(secret), quote_plus(secret)}
    except UnicodeEncodeError:  # a lone surrogate (undecodable bytes from the environment)
        pass
    return {f for f in forms if len(f) >= MIN_SECRET}


class Scrubber:
    """The registry of secret values, and the replacement of them in any text (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._ordered: tuple[str, ...] = ()

    def register(self, *values: object) -> None:
        new = set()
        for value in values:
            if isinstance(value, str) and len(value) >= MIN_SECRET:
                new |= _forms(value)
        with self._lock:
            if new - self._values:
                self._values |= new
                # longest first: a secret containing another is replaced whole
                self._ordered = tuple(sorted(self._values, key=len, reverse=True))

    def register_tree(self, value: Any) -> None:
        """Every string inside a (resolved) configuration value."""
        self.register(*_strings(value))

    def clear(self) -> None:
        with self._lock:
            self._values, self._ordered = set(), ()

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def scrub(self, text: str) -> str:
        # Few distinct secrets per run (one key serves many models): a C-speed substring test each
        # beats one big alternation regex, which costs O(len(text) x secrets).
        for secret in self._ordered:
            if secret in text:
                text = text.replace(secret, MASK)
        if "://" in text:
            text = _USERINFO.sub(r"\1***@", text)
        if "earer" in text or "asic" in text:
            text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
        if ":" in text and ("'" in text or '"' in text):
            text = _QUOTED_PAIR.sub(_cut_secret_pair, text)
            if "':" in text:
                text = _cut_repr_containers(text)
        return text

    def scrub_obj(self, value: Any) -> Any:
        """The same for every string (keys too) inside JSON-like data."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self.scrub(k) if isinstance(k, str) else k: self.scrub_obj(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.scrub_obj(v) for v in value]
        return value


def _cut_secret_pair(match: re.Match[str]) -> str:
    value = match.group("value")  # a mark a table cell clipped (`"(sens…`) is still a mark
    if (value and (SENSITIVE.startswith(value) or MASK.startswith(value))) or not looks_secret_key(
        match.group("key")
    ):
        return match.group(0)
    q, v = match.group("q"), match.group("v")
    return f"{q}{match.group('key')}{q}{match.group('sep')}{v}{MASK}{match.group('end')}"


def _container_end(text: str, start: int) -> int | None:
    """Where the `{…}` or `[…]` opening at `start` ends (quotes and escapes respected), or its line
    does when it is cut short there (a truncated message); None past _MAX_CUT characters."""
    depth, quote = 0, ""
    i = start
    while i < min(len(text), start + _MAX_CUT):
        char = text[i]
        if char == "\n":
            return i
        if quote:
            i += char == "\\"  # skip what is escaped
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(text) if i >= len(text) else None


def _cut_repr_containers(text: str) -> str:
    out: list[str] = []
    pos = 0
    for match in _REPR_KEY.finditer(text):
        if match.start() < pos or not looks_secret_key(match.group("key")):
            continue
        end = _container_end(text, match.end())
        if end is not None:
            out += [text[pos : match.end()], f"'{MASK}'"]
            pos = end
    return "".join(out) + text[pos:] if out else text


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


SCRUBBER = Scrubber()
register = SCRUBBER.register
scrub = SCRUBBER.scrub
scrub_obj = SCRUBBER.scrub_obj


def url_without_userinfo(url: str) -> str:
    return _USERINFO.sub(r"\1", url)


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_UNSAFE_LINE = re.compile(UNSAFE.pattern[:1] + "\n" + UNSAFE.pattern[1:])


def neutralise(text: str, *, line: bool = False) -> str:
    """Text safe for a terminal: unsafe characters become visible `\\x1b` / `\\u202e` escapes;
    with `line`, a newline too (a name that must stay on its line)."""
    pattern = _UNSAFE_LINE if line else UNSAFE
    return pattern.sub(_escape_char, text) if pattern.search(text) else text


def json_safe(text: str) -> str:
    """JSON text with the unsafe characters as `\\u` escapes: still the same JSON, and inert on a
    terminal (json.dumps escapes C0 itself but leaves DEL, C1 and bidi characters raw)."""
    return UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text) if UNSAFE.search(text) else text


def printable_name(name: str) -> bool:
    """No control, bidi or separator characters (refused in manifest names)."""
    return not UNSAFE.search(name) and not any(unicodedata.category(c) == "Cs" for c in name)


class ScrubbingStream(io.TextIOBase):
    """A text stream that scrubs secrets and neutralises terminal escapes in every write.

    Whole writes are scrubbed: click.echo, print and logging each write a message at once.
    """

    def __init__(self, inner: Any, scrubber: Scrubber = SCRUBBER) -> None:
        super().__init__()
        self.inner = inner
        self._scrubber = scrubber

    buffer = None  # no way around the scrubber through the binary layer (click looks for one)

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError("a text stream")
        return self._write(neutralise(self._scrubber.scrub(text)), len(text))

    def write_styled(self, text: str) -> int:
        """A write from the terminal layer (rich): colour and redraw sequences pass, every other
        unsafe character is still neutralised. The text inside was rendered and neutralised before
        it was styled, so a server-sent escape arrives here as the visible `\\x1b`."""
        safe = self._scrubber.scrub(text)
        if UNSAFE.search(safe):
            pieces = _STYLE.split(safe)
            codes = _STYLE.findall(safe)
            safe = "".join(neutralise(p) + (codes[i] if i < len(codes) else "") for i, p in enumerate(pieces))
        return self._write(safe, len(text))

    def _write(self, safe: str, length: int) -> int:
        try:
            self.inner.write(safe)
        except UnicodeEncodeError:  # an ASCII-only terminal (LANG=C): escapes, not a crash
            encoding = self.encoding
            self.inner.write(safe.encode(encoding, "backslashreplace").decode(encoding))
        return length

    def flush(self) -> None:
        self.inner.flush()

    def isatty(self) -> bool:
        return bool(self.inner.isatty())

    def fileno(self) -> int:
        return int(self.inner.fileno())

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.inner, "encoding", None) or "utf-8")

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.inner, "errors", None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
