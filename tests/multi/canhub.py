# One CAN controller shared by masters of several message ids (the many-slave CAN run).
# A native rpc_can_master owns its controller: it initialises pyb.CAN and takes filter bank 0
# for its one id, and reads FIFO 0 as its own, so a second one on the same controller undoes
# the first. Here one pyb.CAN lists every slave's id and sorts the frames it receives into a
# queue per id; each master is an rpc_master whose get_bytes/put_bytes/_flush (the
# documented override) read and write its own id's frames.
import time

import pyb
import rpc


class CanHub:
    def __init__(self, ids, bit_rate=250000, can_bus=2):
        self.can = pyb.CAN(can_bus, pyb.CAN.NORMAL, baudrate=bit_rate, sample_point=75,
                           auto_restart=True)
        # LIST16 filters hold four ids a bank.
        for bank in range((len(ids) + 3) // 4):
            chunk = list(ids[4 * bank:4 * bank + 4])
            chunk += [chunk[-1]] * (4 - len(chunk))
            self.can.setfilter(bank, pyb.CAN.LIST16, 0, chunk)
        self.queues = {i: [] for i in ids}

    def _take_one(self, timeout_ms):
        try:
            can_id, _, _, _, data = self.can.recv(0, timeout=timeout_ms)
        except OSError:
            return False
        queue = self.queues.get(can_id)
        if queue is not None:
            queue.append(bytes(data))
        return True

    def frame(self, can_id, timeout_ms):
        """The next frame of can_id within timeout_ms, or None."""
        queue = self.queues[can_id]
        start = time.ticks_ms()
        while not queue:
            left = timeout_ms - time.ticks_diff(time.ticks_ms(), start)
            if left <= 0 or not self._take_one(left):
                return None
        return queue.pop(0)

    def flush(self, can_id):
        while self.can.any(0):
            self._take_one(0)
        del self.queues[can_id][:]


class hub_master(rpc.rpc_master):
    def __init__(self, hub, message_id):
        self.hub = hub
        self.message_id = message_id
        rpc.rpc_master.__init__(self)

    def _flush(self):
        self.hub.flush(self.message_id)

    def get_bytes(self, buff, timeout_ms):
        view = memoryview(buff)
        start = time.ticks_ms()
        for offset in range(0, len(buff), 8):
            want = min(8, len(buff) - offset)
            left = max(1, timeout_ms - time.ticks_diff(time.ticks_ms(), start))
            data = self.hub.frame(self.message_id, left)
            if data is None or len(data) != want:
                return None
            view[offset:offset + want] = data
        return buff

    def put_bytes(self, data, timeout_ms):
        view = memoryview(data)
        for offset in range(0, len(view), 8):
            try:
                self.hub.can.send(view[offset:offset + 8], self.message_id, timeout=timeout_ms)
            except OSError:
                return False
