"""``make demo`` checks the Python version and the port before it changes anything."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from scripts.demo_check import port_problem, python_problem

ROOT = Path(__file__).resolve().parent.parent


def test_it_refuses_a_python_older_than_3_11_in_one_line():
    problem = python_problem(version=(3, 10), executable="python3")
    assert problem == "make demo needs Python 3.11 or newer; python3 is 3.10. Run: make demo PYTHON=python3.11"
    assert python_problem(version=(3, 11)) is None
    assert python_problem(version=(3, 13)) is None


def test_it_says_the_port_is_taken_and_make_demo_stops_before_touching_anything(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert "is in use" in (port_problem(port) or "")
        result = subprocess.run(
            [
                "make",
                "--no-print-directory",
                "-C",
                str(ROOT),
                "demo-check",
                f"DEMO_PORT={port}",
                f"PYTHON={sys.executable}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith(f"Port {port} is in use: the demo is probably running already")
    assert port_problem(port) is None  # closed again
