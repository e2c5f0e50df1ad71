"""A real SMTP server for Beslut's tests: aiosmtpd on an ephemeral port, storing every message
in a Maildir. Prints the port on the first line, then serves until stdin closes."""
import asyncio
import sys

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP


async def serve(maildir: str) -> None:
    loop = asyncio.get_running_loop()
    handler = Mailbox(maildir)
    # Port 0: the system picks a free port, so parallel tests never collide.
    server = await loop.create_server(lambda: SMTP(handler), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    # Stop when the test that started us goes away (its end of stdin closes).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
