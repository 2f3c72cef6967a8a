"""The virtual cam from the host's side: boot QEMU with the firmware, run scripts over the
raw REPL on UART0, and hand out UART3 (the cam's rpc UART) as a pty.

    with VirtualCam() as cam:
        print(cam.exec("print(1 + 1)"))          # '2\r\n'
        cam.exec_start(SLAVE_SCRIPT)             # runs on the cam while the host talks
        cam.wait_for_output(b"READY")
        ... talk to cam.uart3_path ...
        cam.interrupt()                          # Ctrl-C, returns the script's output

Only the standard library is used (so any Python 3 on the host can drive it).
"""

import atexit
import os
import re
import select
import subprocess
import threading
import time
import tty

REPO_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIRMWARE = os.path.join(REPO_DIR, "build", "qemu", "firmware.elf")
# "Stock firmware" (make qemu-natmod): no rpc inside, native modules load from qemu.ramfile().
NATMOD_FIRMWARE = os.path.join(REPO_DIR, "build", "qemu-natmod", "firmware.elf")
QEMU = os.environ.get("QEMU", "qemu-system-arm")

_PTY_LINE = re.compile(rb"char device redirected to (\S+) \(label (\w+)\)")


class CamError(Exception):
    """A script on the cam raised: the message is its traceback."""


class CamTimeout(Exception):
    pass


def qemu_command(firmware=FIRMWARE, icount=False, uart3="pty", serial=None, uart3_log=None,
                 machine="mps2-an500"):
    """The QEMU command line: UART0 (REPL) on a pty, UART3 on `uart3` (pty, tcp:..., ...);
    or `serial`, the backends of UART0, UART1, ... in order. uart3_log: a file where QEMU
    records every byte the cam sends on UART3 (a pty)."""
    serial = serial or ["pty", "null", "null", uart3]
    cmd = [QEMU, "-M", machine, "-display", "none", "-monitor", "none",
           "-semihosting", "-kernel", firmware]
    if uart3_log:
        # A named pty chardev with a log; QEMU announces it with the label "serial3".
        cmd += ["-chardev", "pty,id=serial3,logfile=%s,logappend=off" % uart3_log]
        serial = serial[:3] + ["chardev:serial3"] + serial[4:]
    for backend in serial:
        cmd += ["-serial", backend]
    if icount:
        # Emulated time counts instructions: 1 ns per instruction.
        cmd += ["-icount", "shift=0"]
    return cmd


class _Pty:
    """One end of a QEMU pty, raw, with a byte buffer and timed reads."""

    def __init__(self, path):
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        self.buf = bytearray()

    def write(self, data):
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def _fill(self, timeout):
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if ready:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                raise CamTimeout("pty %s closed (QEMU gone?)" % self.path)
            self.buf += chunk
            return True
        return False

    def read_until(self, marker, timeout):
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[: i + len(marker)]
                return out
            left = deadline - time.monotonic()
            if left <= 0:
                raise CamTimeout("no %r within %.1f s; got %r" % (marker, timeout, bytes(self.buf[-400:])))
            self._fill(left)

    def drain(self, quiet_for=0.05):
        while self._fill(quiet_for):
            pass
        self.buf.clear()

    def close(self):
        os.close(self.fd)


class VirtualCam:
    def __init__(self, firmware=FIRMWARE, icount=False, uart3="pty", boot_timeout=15.0, serial=None,
                 uart3_log=None, machine="mps2-an500"):
        """machine: the QEMU board the firmware was built for (ports/qemu BOARD=: mps2-an385,
        mps2-an386, mps2-an500)."""
        self.cmd = qemu_command(firmware, icount, uart3, serial, uart3_log, machine)
        self.boot_timeout = boot_timeout
        self.proc = None
        self.repl = None
        self.uart3_path = None
        self.qemu_output = []

    # --- life cycle ---

    def start(self):
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        atexit.register(self.kill)  # no QEMU left behind, whatever happens to the host side
        ptys = {}
        deadline = time.monotonic() + self.boot_timeout
        expected = self.cmd.count("pty") + sum(a.startswith("pty,") for a in self.cmd)
        while len(ptys) < expected:
            if time.monotonic() > deadline:
                self.kill()
                raise CamTimeout("QEMU did not announce its ptys: %r" % self.qemu_output)
            line = self.proc.stdout.readline()
            if not line:
                self.kill()
                raise CamError("QEMU exited: %r" % self.qemu_output)
            self.qemu_output.append(line)
            m = _PTY_LINE.search(line)
            if m:
                ptys[m.group(2).decode()] = m.group(1).decode()
        threading.Thread(target=self._drain_qemu_output, daemon=True).start()
        self.repl = _Pty(ptys["serial0"])
        self.uart_paths = {int(label[len("serial"):]): path for label, path in ptys.items()}
        self.uart3_path = ptys.get("serial3")
        self._enter_raw_repl()
        return self

    def _drain_qemu_output(self):
        for line in self.proc.stdout:
            self.qemu_output.append(line)

    def _enter_raw_repl(self):
        # QEMU notices that the pty was opened on its next poll: repeat until the board answers.
        deadline = time.monotonic() + self.boot_timeout
        while True:
            self.repl.write(b"\r\x03\x03")
            self.repl.write(b"\r\x01")
            try:
                self.repl.read_until(b"raw REPL; CTRL-B to exit\r\n>", 0.5)
                break
            except CamTimeout:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
        self.repl.drain()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def close(self, timeout=5.0):
        """Ends QEMU through semihosting (qemu.exit), killing it if that does not work."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.repl.write(b"\x03\x03")
                self.repl.drain()
                self.repl.write(b"import qemu\nqemu.exit(0)\n\x04")
                self.proc.wait(timeout)
            except (OSError, subprocess.TimeoutExpired, CamTimeout):
                self.kill()
        if self.repl:
            self.repl.close()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    # --- running scripts ---

    def exec_start(self, code):
        """Starts a script on the cam (raw REPL) and returns once the cam has compiled it."""
        if isinstance(code, str):
            code = code.encode()
        self.repl.write(code + b"\x04")
        self.repl.read_until(b"OK", 10.0)

    def exec_wait(self, timeout=30.0):
        """Waits for the running script to end; returns its output, raises CamError on an exception."""
        out = self.repl.read_until(b"\x04", timeout)
        err = self.repl.read_until(b"\x04", timeout)
        self.repl.read_until(b">", timeout)
        if err:
            raise CamError(err.decode(errors="replace") + "\n(output: %r)" % out[-2000:])
        return out.decode(errors="replace")

    def exec(self, code, timeout=30.0):
        self.exec_start(code)
        return self.exec_wait(timeout)

    def eval(self, expr, timeout=30.0):
        """The value of a Python expression on the cam (its repr, evaluated on the host)."""
        out = self.exec("print(repr(%s))" % expr, timeout)
        return eval(out.strip())

    def wait_for_output(self, marker, timeout=30.0):
        """Waits until the running script prints `marker`; returns what it printed before.
        Raises CamError at once if the script ends (or raises) first."""
        if isinstance(marker, str):
            marker = marker.encode()
        buf = self.repl.buf
        deadline = time.monotonic() + timeout
        while True:
            i = buf.find(marker)
            end = buf.find(b"\x04")
            if i >= 0 and (end < 0 or i < end):
                out = bytes(buf[:i])
                del buf[: i + len(marker)]
                return out.decode(errors="replace")
            second = buf.find(b"\x04", end + 1) if end >= 0 else -1
            if second >= 0:
                text = bytes(buf[:second]).decode(errors="replace")
                del buf[: second + 1]
                self.repl.read_until(b">", 5.0)  # the raw REPL's prompt: ready for the next script
                raise CamError("script ended before printing %r: %s" % (marker, text))
            left = deadline - time.monotonic()
            if left <= 0:
                raise CamTimeout("no %r within %.1f s; got %r" % (marker, timeout, bytes(buf[-400:])))
            self.repl._fill(left)

    def interrupt(self, timeout=10.0):
        """Ctrl-C to the running script; returns its output (the KeyboardInterrupt is expected)."""
        self.repl.write(b"\x03")
        out = self.repl.read_until(b"\x04", timeout)
        err = self.repl.read_until(b"\x04", timeout)
        self.repl.read_until(b">", timeout)
        if err and b"KeyboardInterrupt" not in err:
            raise CamError(err.decode(errors="replace"))
        return out.decode(errors="replace")

    def put_file(self, name, data, chunk=2048):
        """Copies a file onto the cam's RAM file store (a NATMOD_FIRMWARE feature), in hex
        chunks over the raw REPL; it stays there across soft resets."""
        self.exec("import qemu\nqemu.ramfile(%r, b'')" % name)
        for i in range(0, len(data), chunk):
            self.exec("qemu.ramfile(%r, bytes.fromhex(%r), True)" % (name, bytes(data[i:i + chunk]).hex()))

    def soft_reset(self):
        """Ctrl-D in the raw REPL: a fresh heap and interpreter, UARTs 1-4 closed."""
        self.repl.write(b"\x04")
        self.repl.read_until(b"soft reboot\r\n", 10.0)
        self.repl.read_until(b"raw REPL; CTRL-B to exit\r\n>", 10.0)
