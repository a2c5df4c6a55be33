"""A socketserver echo in the style of the Python Network Programming
Cookbook (chapter 2): one recv(1024), reply '%d: %s' % (os.getpid(), data).

Usage: python3 cookbook.py fork|thread PORT
"""
import os
import socketserver
import sys


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        data = self.request.recv(1024)
        self.request.sendall(b'%d: %s' % (os.getpid(), data))


class ForkingServer(socketserver.ForkingMixIn, socketserver.TCPServer):
    pass


class ThreadingServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    pass


if __name__ == '__main__':
    cls = {'fork': ForkingServer, 'thread': ThreadingServer}[sys.argv[1]]
    with cls(('127.0.0.1', int(sys.argv[2])), Handler) as server:
        server.serve_forever()
