"""Regression test (found by test_memcheck.py, issue 13): a COMMAND_DATA cut short must be given
up after the engine's gap limit (io.gap_ms, 100 ms), not after the 5 s long timeout. The engine
hands out gap_ms for data packets; the glue (mp_glue/modrpc.c) once ignored it, and a hostile
or broken master that stopped in the middle of a COMMAND_DATA held the slave for the long
timeout, so a well-formed call in that time failed. Without valgrind (bare unix port): quick."""
import socket
import struct
import time

import pytest

from test_memcheck import ECHO, SLAVE_IP, Valgrinded, command_header, free_port, ref_rpc


def test_slave_gives_up_a_short_command_data_after_the_gap(monkeypatch):
    monkeypatch.setenv("OMV_MEMCHECK_BARE", "1")
    port = free_port()
    slave = Valgrinded("slave", "tcp:%d,short=20" % port)
    try:
        slave.wait_line("READY", timeout=60)
        deadline = time.monotonic() + 30
        while True:
            try:
                s = socket.create_connection((SLAVE_IP, port), timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        m = ref_rpc.rpc_stream_master(s)
        m._short_timeout_start = 30
        assert bytes(m.call("echo", b"first", send_timeout=3000, recv_timeout=3000)) == b"first"
        s.sendall(command_header(ECHO, 1000))
        s.sendall(ref_rpc.frame(ref_rpc.COMMAND_DATA, bytes(1000))[:64])
        time.sleep(0.3)  # three gap limits of silence
        t0 = time.monotonic()
        r = m.call("echo", b"next", send_timeout=1000, recv_timeout=1000)
        took = time.monotonic() - t0
        m.call("quit", b"", send_timeout=20000, recv_timeout=3000)
        s.close()
        assert r is not None and bytes(r) == b"next", "the call 0.3 s after a cut COMMAND_DATA failed (%.2f s)" % took
    finally:
        slave.kill()
