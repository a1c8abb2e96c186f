"""es_slow.py PORT SECONDS: an Elasticsearch _bulk stand-in on 127.0.0.1 that takes
SECONDS over every request, then says every document was created. For tests of what
eddy does while a sink is slow (a rebalance or a checkpoint waiting for it)."""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

delay = float(sys.argv[2])


class Slow(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        ids = [json.loads(l)["index"]["_id"] for l in body.split("\n")[0::2] if l]
        time.sleep(delay)
        data = json.dumps({"took": 1, "errors": False, "items": [
            {"index": {"_id": i, "status": 201}} for i in ids]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


HTTPServer(("127.0.0.1", int(sys.argv[1])), Slow).serve_forever()
