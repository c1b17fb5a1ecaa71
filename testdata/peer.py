"""A peer for framed's interop test, written with Python's standard library.

Usage: python3 peer.py PORT

Connects to 127.0.0.1:PORT, sends one frame of its own, then reads frames
in framed's default format (a 4-byte signed little-endian length, then that
many payload bytes) and sends each payload back as a new frame, its length
packed here, until the other side closes its end. Exits non-zero on any
error, such as a stream that ends inside a frame.
"""

import socket
import struct
import sys

MAX_FRAME_SIZE = 4 << 20
GREETING = b"hello from python"


def read_exact(sock, n):
    """Reads exactly n bytes; returns None if the stream ends before any."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 16))
        if not chunk:
            if not buf:
                return None
            raise EOFError("stream ended inside a frame")
        buf += chunk
    return bytes(buf)


def send_frame(sock, payload):
    sock.sendall(struct.pack("<i", len(payload)) + payload)


def main():
    port = int(sys.argv[1])
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        send_frame(sock, GREETING)
        while True:
            header = read_exact(sock, 4)
            if header is None:
                break  # the end of the stream, between frames
            (n,) = struct.unpack("<i", header)
            if not 0 <= n <= MAX_FRAME_SIZE:
                raise ValueError(f"invalid frame length {n}")
            payload = read_exact(sock, n) if n else b""
            if payload is None:
                raise EOFError("stream ended after a header")
            send_frame(sock, payload)
        sock.shutdown(socket.SHUT_WR)


if __name__ == "__main__":
    main()
