"""A client that connects with a tiny receive buffer and reads nothing until told to:
the server's writes then really wait (the kernel absorbs a few kB, not megabytes).

  python3 slow-client.py PORT PATH READ_SECONDS
Prints "sent" once the request is out, waits for a line on stdin, then reads for at
most READ_SECONDS (or until the server closes) and prints the raw response.
"""
import socket
import sys

port, path, read_seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
print("sent", flush=True)
sys.stdin.readline()
s.settimeout(read_seconds)
data = bytearray()
try:
    while True:
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        data += chunk
except (socket.timeout, ConnectionResetError):
    pass
sys.stdout.write(data.decode("utf-8", "replace"))
sys.stdout.flush()
