# The cam as the master: calls the host's slave and prints what it got, for the host tests.
# Runs under MicroPython (this project's rpc) and CPython (the host package).
#
#   cam_master.py net MY_IP SLAVE_IP PORT CALLS [t=PHASE_TIMEOUT_MS]
#   cam_master.py serial PATH|fd:N CALLS [reference] [ref]
import struct
import sys

MICROPYTHON = sys.implementation.name == "micropython"
args = sys.argv[1:] if len(sys.argv) > 1 else ["preset"]
if "ref" in args:
    import ref_rpc as rpc  # bench/ref_rpc.py, the independent peer
else:
    import rpc


def open_line(where):
    if where.startswith("fd:"):
        if MICROPYTHON:
            return open(int(where[3:]), "r+b")
        return open(int(where[3:]), "r+b", buffering=0)
    return open(where, "r+b")


try:
    interface  # set in front of this script, with `calls` (the virtual cam, UART3)
except NameError:
    interface = None
if interface is not None:
    pass
elif args[0] == "net":
    interface = rpc.rpc_network_master(args[2], my_ip=args[1], port=int(args[3]))
    calls = int(args[4])
elif MICROPYTHON or "ref" in args:
    interface = rpc.rpc_stream_master(open_line(args[1]))
    calls = int(args[2])
else:
    interface = rpc.rpc_usb_vcp_master(args[1])
    calls = int(args[2])
if "reference" in args and not MICROPYTHON:
    interface.set_timing(adaptive=False, pipeline=False)
timeout = 1000
for a in args:
    if a.startswith("t="):
        timeout = int(a[2:])
print("READY")
ok = wrong = 0
for i in range(calls):
    n = (i * 131) % 3000
    r = interface.call("sized", struct.pack("<II", i, n), timeout, timeout)
    if r is None:
        print("FAILED", i, n, getattr(interface, "last_error", None))
        continue
    if bytes(r) == bytes((i + k) & 0xFF for k in range(n)):
        ok += 1
    else:
        wrong += 1
print("CALLS", calls, "OK", ok, "WRONG", wrong)
