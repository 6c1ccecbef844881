"""A loopback HTTP/1.1 target for scripts/shards.sh that keeps its own account of what it served.

    python3 scripts/lib/shard_target.py STATS_FILE

Prints its address (127.0.0.1:<port>) on the first line of stdout, answers every GET with 200 "ok"
on keep-alive connections, and on SIGTERM writes STATS_FILE (JSON): the request count, for each `row`
query parameter the `user`s that sent it, and for each `shard` query parameter the wall-clock time
(ns since the epoch) its first request arrived. One asyncio loop serves every connection, so a burst
of connections at a shared start instant is accepted in a few milliseconds (a thread per connection
is not). Only 127.0.0.1 is bound.
"""

import asyncio
import json
import signal
import sys
import time
from urllib.parse import parse_qs, urlsplit

COUNT = 0
USERS_OF_ROW = {}
FIRST_OF_SHARD = {}
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def record(target, now):
    global COUNT
    COUNT += 1
    query = parse_qs(urlsplit(target).query)
    if "row" in query:
        USERS_OF_ROW.setdefault(query["row"][0], set()).add(query.get("user", ["?"])[0])
    if "shard" in query:
        shard = query["shard"][0]
        FIRST_OF_SHARD[shard] = min(FIRST_OF_SHARD.get(shard, now), now)


async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            now = time.time_ns()
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = request_line.split(" ")
            if len(parts) != 3:
                break
            record(parts[1], now)
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main():
    stats_file = sys.argv[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)
    print(f"127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    await stop.wait()
    server.close()
    stats = {
        "count": COUNT,
        "users_of_row": {row: sorted(users) for row, users in USERS_OF_ROW.items()},
        "first_of_shard": FIRST_OF_SHARD,
    }
    with open(stats_file, "w") as f:
        json.dump(stats, f)


if __name__ == "__main__":
    asyncio.run(main())
