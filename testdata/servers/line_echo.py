"""A line echo server on Python's socketserver, as the library's
documentation teaches it (StreamRequestHandler, "for line in
self.rfile"), with ThreadingMixIn: a thread per connection.

Usage: python3 line_echo.py PORT
"""
import socketserver
import sys


class LineEcho(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line)


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True


if __name__ == '__main__':
    with Server(('127.0.0.1', int(sys.argv[1])), LineEcho) as server:
        server.serve_forever()
