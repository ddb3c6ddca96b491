#!/usr/bin/env python3
"""Runs moto's server on a free loopback port for a test process.

Prints the port on stdout, then serves until standard input closes: the test
process holds the pipe, so the server goes away with it, however it ends.
"""

import os
import sys

from moto.server import ThreadedMotoServer


def main() -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server._server.server_port  # werkzeug picked a free port for 0
    print(port, flush=True)
    sys.stdin.read()  # blocks until the parent closes the pipe or exits
    os._exit(0)


if __name__ == "__main__":
    main()
