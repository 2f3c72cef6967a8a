# The raw link without the protocol, for the benchmark's "next to the raw link" figures.
# Runs under MicroPython (unix port), the same interpreter as the cam side.
#   raw_peer.py udp MY_IP PORT          echo every datagram back
#   raw_peer.py tcp HOST_IP PORT NBYTES  connect and send NBYTES as fast as possible
#   raw_peer.py pty PATH                 echo every byte back
import socket
import sys

args = sys.argv[1:]
if args[0] == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(socket.getaddrinfo(args[1], int(args[2]))[0][-1])
    print("READY")
    while True:
        data, addr = s.recvfrom(2048)
        s.sendto(data, addr)
elif args[0] == "tcp":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(socket.getaddrinfo(args[1], int(args[2]))[0][-1])
    block = bytes(65536)
    left = int(args[3])
    print("READY")
    while left:
        n = s.write(memoryview(block)[:min(left, len(block))])
        left -= n
    s.close()
else:
    f = open(args[1], "r+b")
    print("READY")
    buf = bytearray(4096)
    import select
    p = select.poll()
    p.register(f, select.POLLIN)
    while True:
        p.poll()
        n = f.readinto(buf)
        if n:
            f.write(memoryview(buf)[:n])
