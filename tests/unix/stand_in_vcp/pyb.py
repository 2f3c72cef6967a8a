# A stand-in `pyb` with only USB_VCP, for the unix-port tests of rpc_usb_vcp_master/slave
# (tests/unix/test_usb_vcp.py): the unix port has no USB device. Like the cam's USB_VCP it is
# a stream object (here a Python io.IOBase, over one end of a pty pair) whose reads never
# block (None when nothing came: EAGAIN), that polls through ioctl, and that has
# setinterrupt(). Put on the path only by tests/unix/mpy/peer_lib.py ("vcp:FD" specs), which
# sets VCP_FD first.
import io
import select

VCP_FD = None
MP_STREAM_POLL = 3


class USB_VCP(io.IOBase):
    def __init__(self, id=0):
        if VCP_FD is None:
            raise OSError("stand-in USB_VCP: no pty fd set")
        self._f = open(VCP_FD, "r+b")
        self._poll = select.poll()
        self._poll.register(self._f, select.POLLIN | select.POLLOUT)
        self.interrupt = 3  # Ctrl-C, as on the cam until setinterrupt()
        self.setinterrupt_calls = 0

    def setinterrupt(self, chr):
        self.interrupt = chr
        self.setinterrupt_calls += 1

    def _ready(self):
        ready = self._poll.poll(0)
        return ready[0][1] if ready else 0

    def _readable(self):
        return bool(self._ready() & select.POLLIN)

    def readinto(self, buf):
        if not self._readable():
            return None
        return self._f.readinto(buf)

    def write(self, buf):
        return self._f.write(buf)

    def ioctl(self, req, arg):
        if req == MP_STREAM_POLL:
            return self._ready() & arg & (select.POLLIN | select.POLLOUT)
        return 0
