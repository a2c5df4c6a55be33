"""An echo server on a Unix-domain stream socket, on Python's socketserver
as the library's documentation teaches it: ThreadingUnixStreamServer, a
thread per connection, a handler that echoes what each recv brings until
EOF.

Usage: python3 unix_echo.py PATH
"""
import socketserver
import sys


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                break
            self.request.sendall(data)


if __name__ == '__main__':
    with socketserver.ThreadingUnixStreamServer(sys.argv[1], Echo) as server:
        server.serve_forever()
