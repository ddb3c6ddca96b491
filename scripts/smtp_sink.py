"""A loopback SMTP sink for the tests and the demo (aiosmtpd): accepts every
message on 127.0.0.1 and writes each, as received, to DIR/<n>.eml.
Prints its port on the first line of stdout; stops when stdin closes (or on
Ctrl-C when run by hand with --forever).

    python scripts/smtp_sink.py DIR [--port N] [--forever]
"""
import socket
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller


class Saver:
    def __init__(self, out: Path):
        self.out = out
        self.lock = threading.Lock()
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.n += 1
            n = self.n
        head = "X-Envelope-To: " + ", ".join(envelope.rcpt_tos) + "\r\n"
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode()
        tmp = self.out / f".{n}.tmp"
        tmp.write_bytes(head.encode() + data)
        tmp.rename(self.out / f"{n}.eml")
        return "250 OK"


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main() -> None:
    args = sys.argv[1:]
    out = Path(args[0])
    out.mkdir(parents=True, exist_ok=True)
    port = int(args[args.index("--port") + 1]) if "--port" in args else free_port()
    c = Controller(Saver(out), hostname="127.0.0.1", port=port)
    c.start()
    print(port, flush=True)
    try:
        if "--forever" in args:
            threading.Event().wait()
        else:
            sys.stdin.read()
    except KeyboardInterrupt:
        pass
    finally:
        c.stop()


if __name__ == "__main__":
    main()
