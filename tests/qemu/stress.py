"""Many calls in a row to the virtual cam, reporting every failed one with both sides'
counters and last_error: for chasing link problems between a host peer and the cam.

    python tests/qemu/stress.py [--calls 200] [--size 0] [--result 65536] [--peer host|ref]
                                [--icount] [--spin] [--pause ms]

--icount runs QEMU with -icount shift=0; --spin makes the cam wait by polling (as qemu-bench
does), which slows its clock against the host's.
"""

import argparse
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peer  # noqa: E402
from vcam import VirtualCam  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

CAM_EXTRA = """
def report(data):
    s = interface.stats()
    r = repr((dict((k, v) for k, v in s.items() if v), interface.last_error)).encode()
    interface.stats_reset()
    return r
interface.register_callback(report)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--size", type=int, default=0, help="argument bytes (echo)")
    parser.add_argument("--result", type=int, default=0, help="result bytes (pattern) instead of echo")
    parser.add_argument("--peer", choices=peer.PEERS, default="host")
    parser.add_argument("--icount", action="store_true")
    parser.add_argument("--spin", action="store_true")
    parser.add_argument("--timeout", type=int, default=5000, help="send and recv timeout, ms")
    parser.add_argument("--pause", type=float, default=0, help="ms between calls")
    parser.add_argument("--log", default="build/qemu/uart3.log",
                        help="QEMU's record of the cam's UART3 output (shown for a failed call)")
    args = parser.parse_args()

    with open(os.path.join(HERE, "cam", "slave_cam.py")) as f:
        script = f.read().replace('print("READY")', CAM_EXTRA + 'print("READY")')
    if args.spin:
        script = "import qemu\nqemu.idle_spin(True)\n" + script
    failed = 0
    with VirtualCam(icount=args.icount, uart3_log=args.log) as cam:
        host = peer.master(cam.uart3_path, args.peer)
        cam.exec_start(script)
        cam.wait_for_output("READY")
        if args.result:
            name, data = "pattern", struct.pack("<I", args.result)
        else:
            name, data = "echo", bytes(i & 0xFF for i in range(args.size))
        start = time.monotonic()
        for i in range(args.calls):
            time.sleep(args.pause / 1000)
            t = time.monotonic()
            logged = os.path.getsize(args.log)
            r = host.call(name, data, send_timeout=args.timeout, recv_timeout=args.timeout)
            if r is None:
                failed += 1
                host_error = getattr(host, "last_error", None)
                cam_report = host.call("report", b"", send_timeout=5000, recv_timeout=5000)
                print("call %d failed after %.1f s: host %s; cam %s"
                      % (i, time.monotonic() - t, host_error,
                         None if cam_report is None else bytes(cam_report).decode()))
                with open(args.log, "rb") as f:
                    f.seek(logged)
                    print("  the cam sent during that call: %s" % f.read(200).hex(" "))
        print("%d calls, %d failed, %.1f s" % (args.calls, failed, time.monotonic() - start))
        cam.interrupt()
        host.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
