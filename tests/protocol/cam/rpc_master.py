# The cam calls the host over the Protocol V2 channel "rpc" and prints what came back.
import rpc

interface = rpc.rpc_channel_master(name="rpc")
for size in (0, 1, 1000, 20000):
    data = bytes((i * 7 + size) & 0xFF for i in range(size))
    r = interface.call("echo", data, send_timeout=5000, recv_timeout=5000)
    print("echo", size, r is not None and bytes(r) == data)
r = interface.call("no_such_function", b"x", send_timeout=5000, recv_timeout=5000)
print("unknown", r is not None and len(r) == 0)
print("DONE")
