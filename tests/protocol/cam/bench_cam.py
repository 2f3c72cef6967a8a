# The benchmark's cam script: an rpc slave on the Protocol V2 channel "rpc", a "meter"
# channel whose read gives qemu.busy_ns() (under -icount shift=0: instructions), and an rpc
# slave on UART3 for the plain-UART comparison (served in the rpc channel's idle time).
import struct
import qemu
import protocol
import rpc

qemu.idle_spin(True)


class Meter:
    def size(self):
        return 8

    def read(self, offset, size):
        return struct.pack("<Q", qemu.busy_ns())


meter = protocol.register(name="meter", backend=Meter())
channel = rpc.rpc_channel_slave(name="rpc")


def echo(data):
    return bytes(data)


channel.register_callback(echo)
print("bench cam ready")
channel.loop()
