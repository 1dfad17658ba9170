"""A TCP relay: the hub's namespace reaches the PostgreSQL server through it.

    python -m tests.multihost.relay --listen 10.214.0.1:15432 --to 127.0.0.1:5432 --ready-file FILE

The server listens on 127.0.0.1 only, which no other namespace can reach; this process, in
the root namespace, listens on the root end of the hub's database link and copies bytes both
ways. It is the database host's network as the hub sees it (the link to the actors is cut,
never this one). It writes --ready-file once listening, so the test waits on that, not a sleep.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()


async def _serve(listen: tuple[str, int], to: tuple[str, int], ready: Path) -> None:
    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*to)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(relay, *listen)
    ready.write_text("ready\n")
    async with server:
        await server.serve_forever()


def _addr(text: str) -> tuple[str, int]:
    host, _sep, port = text.rpartition(":")
    return host, int(port)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", type=_addr, required=True)
    parser.add_argument("--to", type=_addr, required=True)
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(_serve(args.listen, args.to, args.ready_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
