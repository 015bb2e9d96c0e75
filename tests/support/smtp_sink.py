#!/usr/bin/python3
"""A real SMTP server for tests (aiosmtpd), on 127.0.0.1.

Every message it accepts is parsed with Python's own e-mail package (an
implementation independent of the code under test) and written, before the
server answers 250, as <n>.json into OUT_DIR:

  {"mail_from", "rcpt_tos", "tls": bool, "auth_login": str|null,
   "data": raw message text, "headers": [[name, raw value], ...],
   "subject": decoded subject, "body": decoded text body,
   "content_type", "defects": [parser defects]}

So a test that sees its delivery succeed can read the file at once.

  smtp_sink.py OUT_DIR [--cert CERT --key KEY] [--auth USER:PASSWORD]

With --cert/--key the server offers STARTTLS and refuses mail without it
(require_starttls); without them it speaks plaintext only. With --auth it
refuses mail from clients that did not authenticate. Prints the port on
stdout when it accepts connections; stops on SIGTERM.
"""

import argparse
import email
import email.policy
import json
import os
import signal
import socket
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Sink:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "tls": session.ssl is not None,
            "auth_login": session.auth_data if session.authenticated else None,
            "data": raw.decode("utf-8", "replace"),
            "headers": [[name, str(value)] for name, value in message.items()],
            "subject": str(message["subject"]) if message["subject"] is not None else None,
            "body": body.get_content() if body is not None else None,
            "content_type": message.get_content_type(),
            "defects": [type(d).__name__ for d in message.defects]
            + ([type(d).__name__ for d in body.defects] if body is not None else []),
        }
        with self.lock:
            self.count += 1
            name = os.path.join(self.out_dir, "%d.json" % self.count)
        # Written whole, then renamed: a reader never sees half a file.
        with open(name + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(name + ".tmp", name)
        return "250 Message accepted for delivery"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--auth")
    args = parser.parse_args()

    kwargs = {}
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        kwargs.update(tls_context=context, require_starttls=True)
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (auth_data.login.decode() == user and auth_data.password.decode() == password)
            # handled=False: aiosmtpd then answers 535 itself on failure.
            return AuthResult(success=ok, handled=False,
                              auth_data=auth_data.login.decode() if ok else None)

        kwargs.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=bool(args.cert))

    # aiosmtpd's controller checks it is up by connecting to its own port,
    # so it needs a real port number rather than 0: take a free one, and
    # try another should someone take it first.
    controller = None
    for _ in range(20):
        try:
            controller = Controller(Sink(args.out_dir), hostname="127.0.0.1", port=free_port(),
                                    **kwargs)
            controller.start()
            break
        except (OSError, RuntimeError):
            controller = None
    if controller is None:
        print("no free port", file=sys.stderr)
        return 1

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(controller.port, flush=True)
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
