# The plain-UART comparison: an rpc slave on UART3 with the same callback, and the meter.
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
uart = rpc.rpc_uart_slave(baudrate=115200)


def echo(data):
    return bytes(data)


uart.register_callback(echo)
print("bench uart ready")
uart.loop()
