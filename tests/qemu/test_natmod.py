"""rpc.mpy on a cam with stock firmware: the virtual cam built without our module
(build/qemu-natmod, `make qemu-natmod`) but able to load native modules, as a user's cam
is, and with stand-ins frozen for the rpc.py and mutex.py that stock firmware freezes. The armv7emsp native modules of `make natmod-arm` (rpc.mpy, mutex.mpy: Rust engine,
C glue and Python shim in one file each) are copied onto it over the raw REPL, imported,
and serve the same slave script as the linked-in module (cam/slave_cam.py) to the host
peers over UART3.
"""

import os
import struct

import pytest

import peer
# slave_cam: the test_rpc fixture (cam/slave_cam.py on UART3, a host peer of each kind,
# the link up), here over this module's `cam`: the copied rpc.mpy serves the same script.
from test_rpc import PATTERN, call, check_stream_to_host, slave_cam  # noqa: F401
from vcam import NATMOD_FIRMWARE, REPO_DIR, CamError, VirtualCam

NATMOD_DIR = os.path.join(REPO_DIR, "build", "natmod-arm")
MODULES = ("rpc.mpy", "mutex.mpy")
REF = peer.load_ref_rpc()


def read_module(name):
    with open(os.path.join(NATMOD_DIR, name), "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def stock_cam():
    """The stock-firmware cam, booted once, with rpc.mpy and mutex.mpy copied onto it."""
    for path in [NATMOD_FIRMWARE] + [os.path.join(NATMOD_DIR, m) for m in MODULES]:
        if not os.path.exists(path):
            pytest.fail("no %s: run `make qemu-natmod natmod-arm` first" % path)
    cam = VirtualCam(firmware=NATMOD_FIRMWARE).start()
    try:
        # Stock firmware: `import rpc` finds the frozen stand-in (ports/qemu/stock/), and
        # the file store starts empty.
        out = cam.exec("import sys, qemu, rpc, mutex\n"
                       "print(sys.path, rpc.STOCK_STAND_IN, mutex.STOCK_STAND_IN, qemu.ramfiles())")
        assert out.strip() == "['', '.frozen'] True True {}"
        for name in MODULES:
            cam.put_file(name, read_module(name))
        yield cam
    finally:
        cam.close()


@pytest.fixture
def cam(stock_cam):
    """Soft-reset before each test: a fresh heap, so every test loads the modules anew
    from the store (which a soft reset keeps, like files on flash)."""
    stock_cam.soft_reset()
    return stock_cam


def assert_modules_intact(cam):
    sizes = cam.eval("__import__('qemu').ramfiles()")
    assert sizes == {name: len(read_module(name)) for name in MODULES}
    for name in MODULES:
        assert bytes.fromhex(cam.exec("print(__import__('qemu').ramfile(%r).hex())" % name).strip()) \
            == read_module(name)


def test_files_copied_intact(cam):
    assert_modules_intact(cam)


def test_ramfile_store(cam):
    out = cam.exec(
        "import qemu\n"
        "qemu.ramfile('a.txt', b'12')\n"
        "qemu.ramfile('b.txt', b'xyz')\n"
        "r = [qemu.ramfile('a.txt', b'345', True)]\n"       # append to a file that is not last
        "r += [qemu.ramfile('a.txt'), qemu.ramfile('b.txt')]\n"
        "qemu.ramfile('b.txt', b'new')\n"                   # replace
        "r.append(qemu.ramfile('b.txt'))\n"
        "qemu.ramfile('hello.py', 'X = 6 * 7\\n')\n"         # .py files import too
        "import hello\n"
        "r.append(hello.X)\n"
        "for n in ('a.txt', 'b.txt', 'hello.py'):\n"
        "    qemu.ramfile(n, None)\n"
        "r.append(qemu.ramfile('a.txt'))\n"
        "try:\n"
        "    qemu.ramfile('big', bytearray(300 * 1024))\n"
        "except OSError as e:\n"
        "    r.append(e.errno == 28)\n"                     # ENOSPC
        "r.append(qemu.ramfile('big'))\n"
        "for bad in ('', 'x' * 200):\n"
        "    try:\n"
        "        qemu.ramfile(bad, b'')\n"
        "    except ValueError:\n"
        "        r.append('ValueError')\n"
        "try:\n"
        "    qemu.ramfile('a.txt', None)\n"
        "except OSError as e:\n"
        "    r.append(e.errno == 2)\n"                      # ENOENT
        "print(r)\n")
    assert out.strip() == "[5, b'12345', b'xyz', b'new', 42, None, True, None, 'ValueError', 'ValueError', True]"
    # The copied modules were moved around by these writes and are still whole.
    assert_modules_intact(cam)


def test_native_modules_load(cam):
    # The copies in the current directory ('', first on sys.path) come before the frozen
    # modules ('.frozen').
    out = cam.exec("import rpc, mutex\n"
                   "print(rpc.__file__, mutex.__file__, rpc.crc16(b'123456789'), rpc.name_hash('echo'),"
                   " issubclass(mutex.MutexException, OSError), hasattr(rpc, 'STOCK_STAND_IN'))")
    assert out.split() == ["rpc.mpy", "mutex.mpy", str(0x29B1), str(REF.name_hash("echo")), "True", "False"]
    # A second import is the module already loaded; a missing one is still an ImportError.
    assert cam.eval("__import__('rpc') is __import__('sys').modules['rpc']") is True
    with pytest.raises(CamError, match="ImportError"):
        cam.exec("import rpc_nothing")


def test_mutex_semantics(cam):
    out = cam.exec(
        "import micropython, mutex\n"
        "m = mutex.Mutex()\n"
        "r = [m.test(), m.test()]\n"            # took it; then held
        "m.release()\n"
        "try:\n"
        "    m.release()\n"
        "    r.append('released twice')\n"
        "except mutex.MutexException as e:\n"
        "    r.append(isinstance(e, OSError))\n"
        "seen = []\n"
        "with m:\n"
        # A scheduled callback (interrupt context) finds the lock held.
        "    micropython.schedule(lambda _: seen.append(m.test()), None)\n"
        "    while not seen:\n"
        "        pass\n"
        "    r.append(seen[0])\n"
        "r.append(m.test())\n"                   # free again after the with block
        "m.release()\n"
        "try:\n"
        "    with m:\n"
        "        raise ValueError\n"
        "except ValueError:\n"
        "    pass\n"
        "r.append(m.test())\n"                   # an exception leaves it released
        "print(r)\n")
    assert out.strip() == "[True, False, True, False, True, True]"


def test_copy_after_frozen_on_sys_path_is_shadowed(cam):
    # A copy in a directory that sys.path lists after '.frozen' (on a cam: /flash/lib) loses
    # to the module frozen into the firmware.
    cam.exec("import qemu\nqemu.ramfile('mutex.mpy', None)")
    try:
        cam.put_file("lib/mutex.mpy", read_module("mutex.mpy"))
        out = cam.exec("import sys\nsys.path.append('lib')\nimport mutex\n"
                       "print(mutex.__file__, hasattr(mutex, 'STOCK_STAND_IN'))")
        assert out.split() == ["mutex.py", "True"]
        cam.soft_reset()
        out = cam.exec("import sys\nsys.path.insert(0, 'lib')\nimport mutex\n"
                       "print(mutex.__file__, hasattr(mutex, 'STOCK_STAND_IN'))")
        assert out.split() == ["lib/mutex.mpy", "False"]
    finally:
        cam.exec("import qemu\nif qemu.ramfile('lib/mutex.mpy') is not None: qemu.ramfile('lib/mutex.mpy', None)")
        cam.put_file("mutex.mpy", read_module("mutex.mpy"))


def with_arch(mpy, arch):
    """The .mpy with another native architecture in its header (MP_NATIVE_ARCH_*)."""
    out = bytearray(mpy)
    out[2] = arch << 2 | out[2] & 3
    return bytes(out)


def test_bad_module_files_rejected(cam):
    good = read_module("mutex.mpy")
    assert good[2] >> 2 == 7  # armv7emsp, which this firmware accepts
    bad = [
        (with_arch(good, 2), "incompatible .mpy arch"),   # x64
        (with_arch(good, 8), "incompatible .mpy arch"),   # armv7emdp: a double-precision FPU
        (good[:1] + b"\x05" + good[2:], "incompatible .mpy file"),  # another mpy version
    ]
    # Truncated copies (an interrupted upload): the loader raises, never hangs or runs them.
    bad += [(good[:n], "truncated .mpy file") for n in (4, 100, len(good) // 2, len(good) - 1)]
    for data, error in bad:
        cam.put_file("broken.mpy", data)
        with pytest.raises(CamError, match="ValueError: " + error):
            cam.exec("import broken", timeout=10)
    cam.exec("__import__('qemu').ramfile('broken.mpy', None)")
    assert cam.exec("import mutex\nprint(mutex.Mutex().test())").strip() == "True"


def test_echo_results_and_unknown_name(slave_cam):
    cam, host = slave_cam
    # Host-to-cam bytes are slow here; the reference peer's 3 ms ack waits limit its arguments.
    sizes = (0, 1024, 16384) if host.kind == "host" else (0, 200)
    for size in sizes:
        data = os.urandom(size)
        assert call(host, "echo", data, send_timeout=5000, recv_timeout=5000) == data, size
    for n in (0, 1024, 16384):
        assert call(host, "pattern", struct.pack("<I", n), recv_timeout=5000) == PATTERN[:n], n
    assert call(host, "no_such_callback", b"abc") == b""
    # gc.collect() on the cam (the heap callback) keeps the loaded machine code: still serving.
    free = struct.unpack("<I", call(host, "heap"))[0]
    assert free > 100000
    assert call(host, "echo", b"after gc") == b"after gc"


@pytest.mark.parametrize("slave_cam", ["host"], indirect=True)
def test_stream_to_host(slave_cam):
    cam, host = slave_cam
    check_stream_to_host(host, 10)
