"""Helpers for the end-to-end tests: manifest texts and server state (the fixtures `cli`,
`manifest_dir` and `api` live in tests/conftest.py)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from reconciler.model import OWNER_TAG


def model_yaml(
    name: str,
    *,
    dtype: str = "openai",
    model: str = "gpt-4o",
    key: str = "${OPENAI_API_KEY}",
    summary: str = "",
    tags: str = "[]",
) -> str:
    if dtype == "ollama":
        config = f"  model: {model}\n"
    else:
        config = f"  api_key: {key}\n  model: {model}\n"
    return f"kind: Model\nname: {name}\ndtype: {dtype}\nconfiguration:\n{config}summary: {summary!r}\ntags: {tags}\n"


def seed_model(
    api: httpx.Client,
    name: str,
    *,
    owned: bool = True,
    model: str = "gpt-4o",
    key: str = "sk-test",
    summary: str = "",
    tags: str = "",
) -> None:
    all_tags = ",".join(t for t in (tags, OWNER_TAG if owned else "") if t)
    response = api.post(
        "/models/",
        json={
            "name": name,
            "dtype": "openai",
            "summary": summary,
            "tags": all_tags,
            "configuration": {"api_key": key, "model": model},
        },
    )
    assert response.status_code == 201, response.text


def names(api: httpx.Client) -> list[str]:
    """The model names on the server, sorted."""
    return sorted(m["name"] for m in api.get("/models/").json())


# -- a pseudo-terminal: the CLI as a person sees it ------------------------------------------------

SGR = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Screen:
    """What a terminal received from a run (CRLF as LF), and its exit code."""

    raw: str
    code: int

    @property
    def plain(self) -> str:
        """Without colour: what the same run prints through a pipe, if the output is stable."""
        return SGR.sub("", self.raw)


def on_pty(
    args: list[str],
    env: dict[str, str],
    *,
    timeout: float = 30,
    columns: int = 120,
    interrupt_when: Callable[[], bool] | None = None,
) -> Screen:
    """Run `python -m reconciler ARGS` with stdout and stderr on a fresh pseudo-terminal of
    `columns` x 40; reads until the child exits, within `timeout` seconds. `interrupt_when`: a
    check polled while it runs; the first time it holds, the child gets SIGINT (Ctrl-C)."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args],
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=child,
        env=env,
    )
    os.close(child)
    seen = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if interrupt_when is not None and interrupt_when():
                proc.send_signal(signal.SIGINT)
                interrupt_when = None
            ready, _, _ = select.select([main], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            raise AssertionError(f"still running after {timeout} s: {bytes(seen)[-2000:]!r}")
    finally:
        os.close(main)
    code = proc.wait(timeout)
    return Screen(seen.decode("utf-8", errors="replace").replace("\r\n", "\n"), code)


# -- the watch daemon as a process -------------------------------------------------------------

DAEMON_KEY = "sk-canary-watch-e2e-77d1"
DEADLINE_S = 20


class Daemon:
    """`python -m reconciler watch ARGS --log-format json` (or `log_format="text"`), its stderr
    read line by line: `lines`, and in JSON the parsed `events`."""

    def __init__(self, *args, cwd, env=None, log_format="json"):
        env = {**os.environ, "OPENAI_API_KEY": DAEMON_KEY, **(env or {})}
        command = [
            sys.executable,
            "-m",
            "reconciler",
            "watch",
            *map(str, args),
            "--log-format",
            log_format,
            "--step-ms",
            "20",
        ]
        self.proc = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.events: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            try:
                self.events.append(json.loads(line))
            except ValueError:
                pass

    @property
    def log(self):
        return "".join(self.lines)

    def mark(self):
        return len(self.events)

    def wait_for(self, what, *, since=0, **match):
        """The first event after `since` whose fields equal `match`; fail at the deadline."""
        return self._until(
            what,
            lambda: next(
                (e for e in self.events[since:] if all(e.get(k) == v for k, v in match.items())), None
            ),
        )

    def wait_line(self, what, text, *, since=0):
        """The first line after line `since` (in any log format) that contains `text`."""
        return self._until(what, lambda: next((line for line in self.lines[since:] if text in line), None))

    def _until(self, what, found):
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            if (value := found()) is not None:
                return value
            if self.proc.poll() is not None:
                self._reader.join(5)
                code = self.proc.returncode
                raise AssertionError(f"the daemon exited ({code}) waiting for {what}:\n{self.log}")
            time.sleep(0.02)
        raise AssertionError(f"no {what} within {DEADLINE_S}s:\n{self.log}")

    def terminate(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(DEADLINE_S)
        self._reader.join(5)
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(DEADLINE_S)
        self._reader.join(5)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def daemons():
    started = []

    def start(*args, **kwargs):
        daemon = Daemon(*args, **kwargs)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


def poll(check, what):
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"not within {DEADLINE_S}s: {what}")


def server_names(url, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return sorted(m["name"] for m in httpx.get(url + "/api/v1/models/", headers=headers).json())


def git(cwd, *args):
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
