"""A real SMTP server for Beslut's tests: aiosmtpd on an ephemeral port, storing every message
in a Maildir. Prints the port on the first line, then serves until stdin closes.

Usage: smtp_server.py MAILDIR [REFUSED_ADDRESS ...]; the server refuses RCPT TO for each
refused address with a permanent 550, as a real server refuses an unknown mailbox."""
import asyncio
import os
import sys

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP


class RefusingMailbox(Mailbox):
    def __init__(self, maildir: str, refused: set[str]) -> None:
        super().__init__(maildir)
        self.refused = refused

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refused:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def serve(maildir: str, refused: set[str]) -> None:
    loop = asyncio.get_running_loop()
    handler = RefusingMailbox(maildir, refused)
    # Port 0: the system picks a free port, so parallel tests never collide. SMTP_PORT starts a
    # server again on the port a stopped one had, as a mail relay comes back after an outage.
    port = int(os.environ.get("SMTP_PORT", "0"))
    server = await loop.create_server(lambda: SMTP(handler), "127.0.0.1", port)
    print(server.sockets[0].getsockname()[1], flush=True)
    # Stop when the test that started us goes away (its end of stdin closes).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], {a.lower() for a in sys.argv[2:]}))
