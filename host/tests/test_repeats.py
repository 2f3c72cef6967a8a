"""The host package's slave answers a master's repeated result requests from the result it
kept after its turn (the engine's rule, issue 11), as the module's slave does: a master that
lost RESULT_HEADER or RESULT_DATA asks again and gets the same bytes, and the callback runs
once. The master here is raw bytes on a pty, so that it can repeat exactly those requests.
(The package once handed the kept result back to Python after every turn, and its slave then
answered no repeat: cam masters lost calls on a clean line.)"""

import os
import pty
import select
import struct
import threading
import time
import tty

import rpc

COMMAND_HEADER, COMMAND_DATA, RESULT_HEADER, RESULT_DATA = 0x1209, 0xABD1, 0x9021, 0x1DBA


def packet(magic, payload=b""):
    body = struct.pack("<H", magic) + payload
    return body + struct.pack("<H", rpc.crc16(body))


def read_exactly(fd, n, timeout_s=1.0):
    out = b""
    end = time.monotonic() + timeout_s
    while len(out) < n and time.monotonic() < end:
        if select.select([fd], [], [], 0.01)[0]:
            out += os.read(fd, n - len(out))
    return out


def test_repeated_result_requests_are_answered_from_the_kept_result():
    master_fd, slave_fd = pty.openpty()
    tty.setraw(master_fd)
    tty.setraw(slave_fd)
    slave = rpc.rpc_usb_vcp_slave(os.ttyname(slave_fd))
    runs = []

    def echo(data):
        runs.append(bytes(data))
        return bytes(data)

    slave.register_callback(echo)
    t = threading.Thread(target=slave.loop, daemon=True)
    t.start()
    try:
        arg = b"kept result"
        header = packet(COMMAND_HEADER, struct.pack("<II", rpc.name_hash("echo"), len(arg)))
        result_header = packet(RESULT_HEADER, struct.pack("<I", len(arg)))
        result_data = packet(RESULT_DATA, arg)
        # The slave flushes at its first attempt: repeat the header until it is acked.
        for _ in range(20):
            os.write(master_fd, header)
            if read_exactly(master_fd, 4, 0.2) == packet(COMMAND_HEADER):
                break
        else:
            raise AssertionError("the slave never acked the COMMAND_HEADER")
        os.write(master_fd, packet(COMMAND_DATA, arg))
        assert read_exactly(master_fd, 4) == packet(COMMAND_DATA)
        os.write(master_fd, packet(RESULT_HEADER))
        assert read_exactly(master_fd, 8) == result_header
        os.write(master_fd, packet(RESULT_DATA))
        assert read_exactly(master_fd, len(result_data)) == result_data
        # The master lost both answers and asks again, as after a missed first byte.
        time.sleep(0.01)
        os.write(master_fd, packet(RESULT_HEADER))
        assert read_exactly(master_fd, 8) == result_header, "repeated RESULT_HEADER request unanswered"
        os.write(master_fd, packet(RESULT_DATA))
        assert read_exactly(master_fd, len(result_data)) == result_data, "repeated RESULT_DATA request unanswered"
        assert runs == [arg], runs  # the callback ran once
        assert slave.stats()["repeats_answered"] >= 1, slave.stats()
    finally:
        slave.stop()
        t.join(5)
        os.close(master_fd)
        slave.close()
