# A cam script with two custom channels in the manner of OpenMV's 12-Protocol examples: a
# fixed text channel ("static": size() and read() only) and a buffer the host can write and
# read back ("buffer"), plus a channel event every 100 ms.
import time
import protocol


class TextChannel:
    def size(self):
        return len("HelloWorld!")

    def read(self, offset, size):
        return "HelloWorld!"


class BufferChannel:
    def __init__(self, capacity=8192):
        self.buffer = bytearray(capacity)
        self.length = 0

    def init(self):
        print("buffer channel up")

    def poll(self):
        return self.length > 0

    def size(self):
        return self.length

    def read(self, offset, size):
        if offset >= self.length:
            return b""
        return bytes(self.buffer[offset:min(offset + size, self.length)])

    def write(self, offset, data):
        n = max(0, min(len(data), len(self.buffer) - offset))
        self.buffer[offset:offset + n] = data[:n]
        self.length = max(self.length, offset + n)
        return n


text = protocol.register(name="static", backend=TextChannel())
buf = protocol.register(name="buffer", backend=BufferChannel())
print("channels", text, buf)
while True:
    text.send_event(0xAA, wait_ack=False)
    time.sleep_ms(100)
