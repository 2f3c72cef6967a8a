"""The host side of an rpc link to the virtual cam's UART3 (a QEMU pty). Two peers:

- "ref": bench/ref_rpc.py, the independent pure-Python implementation of the protocol, under
  CPython. It talks over the pty the documented way, by subclassing its rpc_master /
  rpc_slave and overriding get_bytes / put_bytes / _flush. It keeps the reference timing
  (3 ms short timeouts), so it suits small arguments: host-to-cam bytes are slow here.
- "host": this project's computer-side package (host/, `make host`), whose
  rpc_uart_master(port, baudrate) opens the pty with pyserial and adapts its waits to the link.
"""

import importlib.util
import os
import select
import time
import tty

from vcam import REPO_DIR

REF_RPC_PATH = os.path.join(REPO_DIR, "bench", "ref_rpc.py")


def load_ref_rpc():
    spec = importlib.util.spec_from_file_location("ref_rpc", REF_RPC_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class PtyIO:
    """Raw byte I/O on a pty with the timing rules of a UART transport."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)

    def read_exactly(self, n, timeout_ms):
        """n bytes within timeout_ms, or None."""
        out = bytearray()
        deadline = time.monotonic() + timeout_ms / 1000.0
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    out += os.read(self.fd, n - len(out))
                except BlockingIOError:
                    pass
        return out

    def write_all(self, data, timeout_ms):
        view = memoryview(bytes(data))
        deadline = time.monotonic() + max(timeout_ms, 1000) / 1000.0
        while view:
            try:
                n = os.write(self.fd, view)
                view = view[n:]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                select.select([], [self.fd], [], 0.01)
        return True

    def drop_input(self):
        while True:
            ready, _, _ = select.select([self.fd], [], [], 0)
            if not ready:
                return
            try:
                if not os.read(self.fd, 65536):
                    return
            except BlockingIOError:
                return

    def close(self):
        os.close(self.fd)


def pty_class(base):
    """A subclass of a reference rpc_master / rpc_slave that talks over a pty."""

    class PtyPeer(base):
        def __init__(self, path):
            self.io = PtyIO(path)
            base.__init__(self)

        def get_bytes(self, buff, timeout_ms):
            data = self.io.read_exactly(len(buff), timeout_ms)
            if data is None:
                return None
            buff[:] = data
            return buff

        def put_bytes(self, data, timeout_ms):
            self.io.write_all(data, timeout_ms)

        def _flush(self):
            self.io.drop_input()

        def close(self):
            self.io.close()

    PtyPeer.__name__ = "Pty" + base.__name__
    return PtyPeer


PEERS = ("ref", "host")


def _host_rpc():
    import rpc  # the host package, installed into .venv by `make host`
    return rpc


def master(path, kind="ref"):
    if kind == "host":
        return _host_rpc().rpc_uart_master(path, baudrate=115200)
    return pty_class(load_ref_rpc().rpc_master)(path)


def slave(path, kind="ref"):
    if kind == "host":
        return _host_rpc().rpc_uart_slave(path, baudrate=115200)
    return pty_class(load_ref_rpc().rpc_slave)(path)


def write_raw(peer, data):
    """Bytes straight onto the link, around the protocol (noise, hostile packets)."""
    if hasattr(peer, "io"):
        peer.io.write_all(data, 1000)
    else:
        os.write(peer._fd, data)
