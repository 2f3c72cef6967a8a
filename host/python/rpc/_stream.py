"""rpc_stream_master/slave(stream): over any byte stream that has a file descriptor (a
socket, a pty or serial device opened in binary mode, a pipe pair), as on the cam side
(docs/python-api.md). The stream is switched to non-blocking; it is the caller's to close."""

import os
import socket

from ._base import rpc_master, rpc_slave
from ._transport import NativeTransport, read_fd, wait_readable, write_fd


class _StreamLink(NativeTransport):

    _byte_stream = True
    def _open_stream(self, stream, write_stream=None):
        self._stream = stream
        self._in_fd = stream.fileno()
        self._out_fd = (write_stream or stream).fileno()
        self._socket = isinstance(stream, socket.socket)
        for fd in {self._in_fd, self._out_fd}:
            os.set_blocking(fd, False)
        self._init_native(_StreamLink)

    def _read(self, buff, deadlines, stream):
        return read_fd(self._in_fd, buff, deadlines)

    def _write(self, data, timeout_ms, stream):
        write_fd(self._out_fd, data, timeout_ms)

    def _wait_input(self, timeout_s):
        return wait_readable(self._in_fd, timeout_s)

    def _drop_input(self):
        while wait_readable(self._in_fd, 0):
            try:
                if not os.read(self._in_fd, 65536):
                    return
            except BlockingIOError:
                return


class rpc_stream_master(_StreamLink, rpc_master):
    """Master over a stream: rpc_stream_master(sock), or (reader, writer) of a pipe pair."""

    def __init__(self, stream, write_stream=None, raise_on_error=False):
        rpc_master.__init__(self, raise_on_error)
        self._open_stream(stream, write_stream)


class rpc_stream_slave(_StreamLink, rpc_slave):
    def __init__(self, stream, write_stream=None, raise_on_error=False):
        rpc_slave.__init__(self, raise_on_error)
        self._open_stream(stream, write_stream)
