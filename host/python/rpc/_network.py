"""Network interfaces (docs/PROTOCOL.md, "Network"): port 0x1DBA; packets of at most 1400 bytes go
over UDP, larger ones and every stream over one TCP connection that the master listens for and
the slave opens; the slave learns the master's address from the first datagram it receives.

A cam that reboots opens a new TCP connection: the master takes the newest one it is offered.
"""

import errno
import logging
import select
import socket

from ._base import rpc_master, rpc_slave
from ._transport import NativeTransport, wait_readable

log = logging.getLogger("rpc")

UDP_LIMIT = 1400
_CONNECT_TIMEOUT_S = 1.0


class _NetworkLink(NativeTransport):
    # UDP datagrams are read whole and handed out as a byte stream (see _udp_read).
    _byte_stream = True
    # The whole packet a receive is part of (set by the engine driver): routes UDP or TCP.
    _packet_len = 0
    _dgram = b""

    def _open_network(self, my_ip, port, master, slave_ip=None):
        self._my_addr = (my_ip, port)
        self._master = master
        self._peer = (slave_ip, port) if master else None
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._udp.bind(self._my_addr)
        self._udp.setblocking(False)
        self._listener = None
        if master:
            self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind(self._my_addr)
            self._listener.listen(2)
            self._listener.setblocking(False)
        self._tcp = None
        self._init_native(_NetworkLink)
        log.info("rpc network %s on %s:%d", "master" if master else "slave", my_ip or "*", port)

    # --- TCP ----------------------------------------------------------------------------

    def _accept_pending(self):
        """Master: take a connection waiting in the listener (a new one replaces the old)."""
        try:
            conn, addr = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return False
        if self._tcp is not None:
            log.info("rpc: new TCP connection from %s:%d replaces the old one", *addr)
            self._close_tcp()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.setblocking(False)
        self._tcp = conn
        return True

    def _tcp_ready(self, timeout_ms):
        if self._master:
            self._accept_pending()
            if self._tcp is None:
                if not wait_readable(self._listener.fileno(), timeout_ms / 1000.0):
                    raise TimeoutError("no TCP connection from the slave in %d ms" % timeout_ms)
                if not self._accept_pending():
                    raise TimeoutError("no TCP connection from the slave")
        elif self._tcp is None:
            if self._peer is None:
                raise ConnectionError("master address not known yet (no datagram received)")
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(min(_CONNECT_TIMEOUT_S, max(timeout_ms, 1) / 1000.0))
            try:
                s.connect(self._peer)
            except OSError:
                s.close()
                raise
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
            self._tcp = s
        return self._tcp

    def _close_tcp(self):
        if self._tcp is not None:
            try:
                self._tcp.close()
            finally:
                self._tcp = None

    def _tcp_read(self, buff, deadlines):
        view = memoryview(buff)
        got = 0
        while got < len(view):
            left = max(deadlines.remaining(got), 0)
            sock = self._tcp_ready(left * 1000.0)
            # Past the deadline, what is already there still counts.
            if not wait_readable(sock.fileno(), left):
                return False
            try:
                n = sock.recv_into(view[got:])
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                self._close_tcp()
                raise
            if n == 0:
                self._close_tcp()
                raise ConnectionError("TCP connection closed by the peer")
            got += n
            deadlines.progress()
        return True

    def _tcp_write(self, data, timeout_ms):
        sock = self._tcp_ready(timeout_ms)
        sock.settimeout(max(timeout_ms, 1) / 1000.0)
        try:
            sock.sendall(data)
        except socket.timeout as e:
            self._close_tcp()
            raise TimeoutError(str(e)) from e
        except OSError:
            self._close_tcp()
            raise
        finally:
            if self._tcp is not None:
                self._tcp.setblocking(False)

    # --- UDP ----------------------------------------------------------------------------

    def _udp_read(self, buff, deadlines):
        """Fill buff from the datagram being read, then from the next ones: a datagram is
        read whole, so that a read shorter than it (the engine reads a packet's first bytes
        to tell which packet came) loses nothing."""
        view = memoryview(buff)
        got = 0
        while got < len(view):
            if self._dgram:
                n = min(len(view) - got, len(self._dgram))
                view[got:got + n] = self._dgram[:n]
                self._dgram = self._dgram[n:]
                got += n
                continue
            if not wait_readable(self._udp.fileno(), max(deadlines.remaining(got), 0)):
                return False
            try:
                data, addr = self._udp.recvfrom(UDP_LIMIT + 64)
            except (BlockingIOError, InterruptedError):
                continue
            except ConnectionRefusedError:
                # ICMP port unreachable for an earlier datagram: the peer is not up (yet).
                continue
            if not self._master:
                if self._peer != addr:
                    if self._peer is not None:
                        self._close_tcp()
                    self._peer = addr
            self._dgram = data
            if data:
                deadlines.progress()
        return True

    def _udp_write(self, data, timeout_ms):
        if self._peer is None:
            raise ConnectionError("master address not known yet (no datagram received)")
        try:
            self._udp.sendto(data, self._peer)
        except (BlockingIOError, InterruptedError) as e:
            if not _wait_writable_sock(self._udp, timeout_ms):
                raise TimeoutError("UDP send did not go in %d ms" % timeout_ms) from e
            self._udp.sendto(data, self._peer)
        except ConnectionRefusedError:
            # An earlier datagram found no one: this one may (the peer may be rebooting).
            self._udp.sendto(data, self._peer)

    # --- the transport ------------------------------------------------------------------

    def _read(self, buff, deadlines, stream):
        if stream or max(len(buff), self._packet_len) > UDP_LIMIT:
            return self._tcp_read(buff, deadlines)
        return self._udp_read(buff, deadlines)

    def _write(self, data, timeout_ms, stream):
        if stream or len(data) > UDP_LIMIT:
            self._tcp_write(data, timeout_ms)
        else:
            self._udp_write(data, timeout_ms)

    def _wait_input(self, timeout_s):
        fds = [self._udp.fileno()] + ([self._tcp.fileno()] if self._tcp is not None else [])
        ready, _, _ = select.select(fds, [], [], max(timeout_s, 0))
        return bool(ready)

    def _drop_input(self):
        self._dgram = b""
        _drain(self._udp)
        if self._master:
            self._accept_pending()
        if self._tcp is not None and _drain(self._tcp):
            self._close_tcp()

    def close(self):
        self._close_tcp()
        for s in (self._udp, self._listener):
            if s is not None:
                s.close()
        self._udp = self._listener = None


def _wait_writable_sock(sock, timeout_ms):
    from ._transport import wait_writable

    return wait_writable(sock.fileno(), timeout_ms / 1000.0)


def _drain(sock):
    """Read and drop everything pending on a non-blocking socket; True if it is closed."""
    while True:
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as e:
            return e.errno not in (errno.ECONNREFUSED,)
        if not data and sock.type == socket.SOCK_STREAM:
            return True


class rpc_network_master(_NetworkLink, rpc_master):
    """Master that calls a slave at `slave_ip` (UDP and TCP on `port` on both sides)."""

    def __init__(self, slave_ip, my_ip="", port=0x1DBA, raise_on_error=False):
        rpc_master.__init__(self, raise_on_error)
        self._open_network(my_ip, port, True, slave_ip)


class rpc_network_slave(_NetworkLink, rpc_slave):
    def __init__(self, my_ip="", port=0x1DBA, raise_on_error=False):
        rpc_slave.__init__(self, raise_on_error)
        self._open_network(my_ip, port, False)
