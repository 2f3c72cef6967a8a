"""The CAN interfaces over python-can's virtual bus (host master and host slave in one
process): 8-byte frames of the 11-bit message id, a wrong id or length refused."""

import struct

import can
import pytest

import rpc


def test_calls_over_a_virtual_can_bus(serve):
    channel = "omv-rpc-test"
    slave = rpc.rpc_can_slave(interface="virtual", channel=channel, message_id=0x123)
    master = rpc.rpc_can_master(interface="virtual", channel=channel, message_id=0x123)

    def add(data):
        a, b = struct.unpack("<ii", data)
        return struct.pack("<i", a + b)

    def echo(data):
        return bytes(data)

    slave.register_callback(add)
    slave.register_callback(echo)
    t = serve(slave)
    for i in range(20):
        r = master.call("add", struct.pack("<ii", i, 100), 3000, 3000)
        assert r is not None, master.last_error
        assert struct.unpack("<i", r)[0] == i + 100
    arg = bytes(range(256)) * 4 + b"odd"  # not a multiple of 8: a short last frame
    assert bytes(master.call("echo", arg, 3000, 3000)) == arg
    t.stop()
    master.close()


def test_frames_of_another_id_or_length_are_refused():
    channel = "omv-rpc-test-2"
    master = rpc.rpc_can_master(interface="virtual", channel=channel, message_id=0x7FF)
    noise = can.Bus(interface="virtual", channel=channel)
    noise.send(can.Message(arbitration_id=0x7FF, data=b"\x01\x02\x03", is_extended_id=False))
    assert master.get_bytes(bytearray(8), 200) is None  # 3 bytes where 8 were due
    noise.send(can.Message(arbitration_id=0x7FF, data=bytes(8), is_extended_id=False))
    assert master.get_bytes(bytearray(8), 200) is not None
    assert master.call("echo", b"x", 100, 100) is None  # nobody answers
    assert master.last_error.startswith("SEND_TIMEOUT")
    noise.shutdown()
    master.close()
    with pytest.raises(ValueError):
        rpc.rpc_can_master(interface="virtual", channel=channel, message_id=0x800)
    with pytest.raises(ValueError):
        rpc.rpc_kvarser_can_master(0, sampling_point=80)
