"""Helpers for the end-to-end tests: manifest texts and server state (the fixtures `cli`,
`manifest_dir` and `api` live in tests/conftest.py)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

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
