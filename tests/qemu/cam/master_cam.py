# The cam as rpc master on UART3, calling a slave on the host. Runs on the virtual cam.
import struct

import rpc

interface = rpc.rpc_uart_master(baudrate=115200)


def call(name, data=b"", attempts=5, recv_timeout=1000):
    # The host slave may not be listening yet at the first call.
    for _ in range(attempts):
        result = interface.call(name, data, send_timeout=1000, recv_timeout=recv_timeout)
        if result is not None:
            return result
    return None


print("READY")
r = call("add", struct.pack("<ii", 40, 2))
print("add", None if r is None else struct.unpack("<i", r)[0])
r = call("reverse", b"virtual cam")
print("reverse", None if r is None else bytes(r))
# 20000 bytes from the host take about 1.5 s through QEMU's UART model.
r = call("blob", struct.pack("<I", 20000), recv_timeout=10000)
print("blob", None if r is None else (len(r), sum(r) & 0xFFFF))
r = call("no_such_function")
print("unknown", None if r is None else bytes(r))
print("DONE")
