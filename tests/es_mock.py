"""es_mock.py PORT LOG AUTH: a stand-in for Elasticsearch's _bulk API on 127.0.0.1.

Checks every request body line by line (an `index` action with _index and _id, then a
JSON object whose `id` equals the _id) and answers like Elasticsearch: the first
request gets a whole 429, the second a 503; afterwards items are judged one by one: a
document with "bad": true gets a 400 mapper_parsing_exception, the first try of every
document whose id ends in 3 gets a per-item 429, the rest are created (201). LOG gets
one line per event: `indexed INDEX ID`, `bad-request WHY`, `auth-fail`, `status N`.
AUTH is the Authorization header to expect ("-" for none)."""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

port, log_path, auth = int(sys.argv[1]), sys.argv[2], sys.argv[3]
log = open(log_path, "a", buffering=1)
requests = 0
seen_3 = set()


def check_body(body):
    """The (index, id, doc) triples of a _bulk body, or a reason it is malformed."""
    if not body.endswith(b"\n"):
        return "body does not end with a newline"
    lines = body.decode("utf-8").split("\n")[:-1]
    if len(lines) % 2:
        return "odd number of lines"
    out = []
    for i in range(0, len(lines), 2):
        try:
            action, doc = json.loads(lines[i]), json.loads(lines[i + 1])
        except ValueError as e:
            return "line %d is not JSON: %s" % (i + 1, e)
        meta = action.get("index") if isinstance(action, dict) else None
        if len(action) != 1 or not isinstance(meta, dict):
            return "line %d is not an index action" % (i + 1)
        if not isinstance(meta.get("_index"), str) or not isinstance(meta.get("_id"), str):
            return "line %d lacks _index or _id" % (i + 1)
        if not isinstance(doc, dict) or str(doc.get("id")) != meta["_id"]:
            return "line %d: the document's id is not the action's _id" % (i + 2)
        out.append((meta["_index"], meta["_id"], doc))
    return out


class Bulk(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, obj):
        data = json.dumps(obj).encode()
        log.write("status %d\n" % status)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        global requests
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/_bulk":
            return self.answer(404, {"error": "no such path " + self.path})
        if auth != "-" and self.headers.get("Authorization") != auth:
            log.write("auth-fail\n")
            return self.answer(401, {"error": "unauthorized"})
        if self.headers.get("Content-Type") != "application/x-ndjson":
            log.write("bad-request content type %s\n" % self.headers.get("Content-Type"))
            return self.answer(400, {"error": "content type"})
        docs = check_body(body)
        if isinstance(docs, str):
            log.write("bad-request %s\n" % docs)
            return self.answer(400, {"error": docs})
        requests += 1
        if requests == 1:
            return self.answer(429, {"error": "too many requests"})
        if requests == 2:
            return self.answer(503, {"error": "unavailable"})
        items = []
        for index, id_, doc in docs:
            if doc.get("bad"):
                items.append({"index": {"_index": index, "_id": id_, "status": 400, "error": {
                    "type": "mapper_parsing_exception", "reason": "failed to parse field [bad]"}}})
            elif id_.endswith("3") and id_ not in seen_3:
                seen_3.add(id_)
                items.append({"index": {"_index": index, "_id": id_, "status": 429, "error": {
                    "type": "es_rejected_execution_exception", "reason": "queue full"}}})
            else:
                log.write("indexed %s %s\n" % (index, id_))
                items.append({"index": {"_index": index, "_id": id_, "status": 201, "result": "created"}})
        errors = any(i["index"]["status"] >= 300 for i in items)
        self.answer(200, {"took": 1, "errors": errors, "items": items})


HTTPServer(("127.0.0.1", port), Bulk).serve_forever()
