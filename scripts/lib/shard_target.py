"""A loopback HTTP/1.1 target for scripts/shards.sh that keeps its own account of what it served.

    python3 scripts/lib/shard_target.py STATS_FILE

Prints its address (127.0.0.1:<port>) on the first line of stdout, answers every request with 200
"ok" on keep-alive connections, and on SIGTERM writes STATS_FILE (JSON): the request count, for each
`row` query parameter the `user`s that sent it, and for each `shard` query parameter the wall-clock
time (ns since the epoch) of its first request. Only 127.0.0.1 is bound.
"""

import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
COUNT = 0
USERS_OF_ROW = {}
FIRST_OF_SHARD = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        now = time.time_ns()
        query = parse_qs(urlsplit(self.path).query)
        global COUNT
        with LOCK:
            COUNT += 1
            if "row" in query:
                USERS_OF_ROW.setdefault(query["row"][0], set()).add(query.get("user", ["?"])[0])
            if "shard" in query:
                shard = query["shard"][0]
                FIRST_OF_SHARD[shard] = min(FIRST_OF_SHARD.get(shard, now), now)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def main():
    stats_file = sys.argv[1]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True

    def stop(*_):
        with LOCK:
            stats = {
                "count": COUNT,
                "users_of_row": {row: sorted(users) for row, users in USERS_OF_ROW.items()},
                "first_of_shard": FIRST_OF_SHARD,
            }
        with open(stats_file, "w") as f:
            json.dump(stats, f)
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
