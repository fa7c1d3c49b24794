#!/usr/bin/python3
"""A stand-in for the network service: Nova renders every server by asking Neutron for ports and
security groups; with servers created `--nic none` empty lists are the true answer. The only fake in
the OpenStack lab (a real neutron-server needs MariaDB). Usage: fake-neutron.py PORT"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?")[0].rstrip("/")
        if path in ("", "/v2.0"):
            return self._send(200, {"versions": [{"id": "v2.0", "status": "CURRENT",
                                                   "links": [{"rel": "self", "href": "/v2.0/"}]}]})
        name = path.rsplit("/", 1)[-1].replace(".json", "")
        if name == "extensions":
            return self._send(200, {"extensions": []})
        key = name.replace("-", "_")
        return self._send(200, {key: []})

    def do_POST(self):
        self._send(404, {"NeutronError": {"message": "fake-neutron creates nothing"}})

    do_PUT = do_POST
    do_DELETE = do_POST

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
