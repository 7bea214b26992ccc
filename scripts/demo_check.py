"""Checks ``make demo`` runs before it installs or changes anything: one line each when something is wrong.

Kept to old syntax on purpose: it must run, and say what is wrong, on the
too-old Python it refuses.
"""

import socket
import sys

MINIMUM = (3, 11)


def python_problem(version=None, executable="python3"):
    version = tuple(version or sys.version_info[:2])
    if version >= MINIMUM:
        return None
    found = "{}.{}".format(*version[:2])
    return "make demo needs Python 3.11 or newer; " + executable + " is " + found + ". Run: make demo PYTHON=python3.11"


def port_problem(port, host="127.0.0.1"):
    with socket.socket() as probe:
        probe.settimeout(1)
        in_use = probe.connect_ex((host, port)) == 0
    if not in_use:
        return None
    return (
        f"Port {port} is in use: the demo is probably running already (http://{host}:{port}/). "
        f"Stop it, or run: make demo DEMO_PORT={port + 1}"
    )


def main(argv):
    port = int(argv[1]) if len(argv) > 1 else 8000
    executable = argv[2] if len(argv) > 2 else "python3"
    problem = python_problem(executable=executable) or port_problem(port)
    if problem:
        sys.stderr.write(problem + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
