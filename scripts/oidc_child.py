#!/usr/bin/env python3
"""Runs oidc-provider-mock (a real OpenID Connect provider for tests) on a
free loopback port for a test process.

Listens on the port given as the first argument (default 0: a free one),
prints the port on stdout, then serves until standard input closes: the test
process holds the pipe, so the server goes away with it, however it ends.

The provider accepts any client id and secret, requires a nonce in every
authorization request, and lets a test set a user's claims with
`PUT /users/{sub}` (claims such as `aud`, `exp` or `nonce` replace the ones
it would put in the ID token, which is how the tests get bad tokens signed
by the provider itself).
"""

import os
import sys
import threading

os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # plain http on loopback

import werkzeug.serving  # noqa: E402

import oidc_provider_mock  # noqa: E402


def main() -> None:
    app = oidc_provider_mock.app(require_nonce=True)
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = werkzeug.serving.make_server("127.0.0.1", port, app, threaded=True)
    print(server.server_port, flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # blocks until the parent closes the pipe or exits
    os._exit(0)


if __name__ == "__main__":
    main()
