"""The seed program, ported to Python 3: a ForkingMixIn server whose handler
takes a single recv(1024) for the whole message and replies with the
parent's PID.  echoconform must judge it "conformant to the MUSTs, fails a
SHOULD" (ONESHOT-4: a message split across writes comes back cut).

Usage: python3 seed_forking.py PORT
"""
import os
import socketserver
import sys


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        data = self.request.recv(1024)
        self.request.send(b'%d :%s' % (os.getppid(), data))


class Server(socketserver.ForkingMixIn, socketserver.TCPServer):
    pass


if __name__ == '__main__':
    with Server(('127.0.0.1', int(sys.argv[1])), Handler) as server:
        server.serve_forever()
