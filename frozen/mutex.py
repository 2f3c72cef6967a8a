# mutex: a lock that interrupt handlers and threads can share. The atomic step is in C
# (module _mutex in firmware, where it masks interrupts; in the native mutex.mpy it is an
# atomic exchange and this file is merged after it).
try:
    from _mutex import _test_and_set, _clear
except ImportError:
    pass  # native module: the C part already put these names here


class MutexException(OSError):
    pass


class Mutex:
    def __init__(self):
        self._flag = bytearray(1)

    def __enter__(self):
        # Wait for the holder (an interrupt handler or another thread) to release it.
        while not _test_and_set(self._flag):
            pass
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.release()

    def release(self):
        if not _clear(self._flag):
            raise MutexException("mutex not held")

    def test(self):
        """Takes the lock if it is free, without waiting: True when it did."""
        return _test_and_set(self._flag)
