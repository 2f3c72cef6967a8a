"""A RESULT_DATA request that the slave dropped (it came after the slave's short timeout, and
the slave went back to waiting for a RESULT_HEADER request): the host master must give up on
its first byte by the engine's limit (Engine::start_timeout_ms) and retry within recv_timeout,
not sit out the 5000 ms long timeout. The slave here is written out in CPython, packet by
packet, so that it can drop exactly that request."""

import socket
import struct
import threading
import time

import pytest

import rpc

COMMAND_HEADER, COMMAND_DATA, RESULT_HEADER, RESULT_DATA = 0x1209, 0xABD1, 0x9021, 0x1DBA


def packet(magic, payload=b""):
    body = struct.pack("<H", magic) + payload
    return body + struct.pack("<H", rpc.crc16(body))


class DroppingSlave:
    """Serves `results` (name -> bytes) over a socket and ignores the first RESULT_DATA
    request of each call. Anything it does not understand ends it (recorded in `errors`)."""

    def __init__(self, sock, results):
        self.sock = sock
        self.results = {rpc.name_hash(name): value for name, value in results.items()}
        self.dropped = 0
        self.served = 0
        self.errors = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _packet(self, payload_len):
        """The rest of a packet whose magic was read: payload, crc checked."""
        return self._read(payload_len + 2)

    def _run(self):
        self.sock.settimeout(30)
        result = b""
        argument_len = 0
        request_dropped = True
        try:
            while True:
                (magic,) = struct.unpack("<H", self._read(2))
                if magic == COMMAND_HEADER:
                    rest = self._packet(8)
                    name_hash, argument_len = struct.unpack("<II", rest[:8])
                    result = self.results.get(name_hash, b"")
                    request_dropped = False
                    self.sock.sendall(packet(COMMAND_HEADER))
                elif magic == COMMAND_DATA:
                    self._packet(argument_len)
                    self.sock.sendall(packet(COMMAND_DATA))
                elif magic == RESULT_HEADER:
                    self._packet(0)
                    self.sock.sendall(packet(RESULT_HEADER, struct.pack("<I", len(result))))
                elif magic == RESULT_DATA:
                    self._packet(0)
                    if not request_dropped:
                        # As a slave whose short timeout ran out before the request came.
                        request_dropped = True
                        self.dropped += 1
                        continue
                    self.served += 1  # before the master can see the result
                    self.sock.sendall(packet(RESULT_DATA, result))
                else:
                    self.errors.append("unexpected magic 0x%04X" % magic)
                    return
        except (EOFError, OSError):
            return


@pytest.fixture
def dropping():
    made = []

    def make(results):
        a, b = socket.socketpair()
        slave = DroppingSlave(b, results)
        master = rpc.rpc_stream_master(a)
        made.append((master, slave, a, b))
        return master, slave

    yield make
    for master, slave, a, b in made:
        master.close()
        a.close()
        b.close()
        slave.thread.join(10)


@pytest.mark.parametrize("result", [b"", b"late request" * 50], ids=["empty", "600 B"])
def test_a_dropped_result_data_request_is_retried_within_recv_timeout(dropping, result):
    master, slave = dropping({"answer": result})
    for i in range(3):
        start = time.monotonic()
        r = master.call("answer", struct.pack("<I", i), send_timeout=1000, recv_timeout=1000)
        elapsed = time.monotonic() - start
        assert r is not None, "call %d: %s after %.2f s" % (i, master.last_error, elapsed)
        assert bytes(r) == result
        # The old host waited 5000 ms for the first byte of an empty result, then failed.
        assert elapsed < 2.0, "call %d took %.2f s" % (i, elapsed)
    assert slave.errors == []
    assert slave.dropped == 3 and slave.served == 3
    assert master.stats()["retries"] >= 3
