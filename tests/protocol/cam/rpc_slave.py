# The cam answers rpc calls over the Protocol V2 channel "rpc".
import rpc

interface = rpc.rpc_channel_slave(name="rpc")


def echo(data):
    return bytes(data)


def length(data):
    return str(len(data)).encode()


def frames(data):
    n = int(bytes(data))
    count = [0]

    def next_frame():
        count[0] += 1
        return None if count[0] > n else b"frame %d " % count[0] * 20

    interface.schedule_callback(lambda: interface.stream_writer(next_frame))
    return b"ok"


interface.register_callback(echo)
interface.register_callback(length)
interface.register_callback(frames)
print("rpc slave ready")
interface.loop()
