# The cam calls the host over the Protocol V2 channel "rpc" and prints what came back.
import rpc

interface = rpc.rpc_channel_master(name="rpc")
interface.set_timing(bytes_per_s=8000)
# The host's slave starts after this script registered the channel: wait for it.
for _ in range(20):
    if interface.call("echo", b"ready", send_timeout=2000, recv_timeout=2000) is not None:
        break
for size in (0, 1, 1000):
    data = bytes((i * 7 + size) & 0xFF for i in range(size))
    r = interface.call("echo", data, send_timeout=5000, recv_timeout=5000)
    print("echo", size, r is not None and bytes(r) == data, None if r is None else len(r), interface.last_error)
r = interface.call("no_such_function", b"x", send_timeout=5000, recv_timeout=5000)
print("unknown", r is not None and len(r) == 0)
print("DONE")
