# Run on the virtual cam (over its raw REPL) before mpremote: the stock-like firmware has no
# filesystem, only the RAM file store behind qemu.ramfile(), so this gives the raw REPL's
# globals the `open()` and `os` that mpremote's file commands use (stat, mkdir, remove, and
# files opened "wb", "ab" or "rb"). "." and "" are the store's one directory. A stand-in for
# the test, not part of the module: on a cam, mpremote writes to its flash drive.
import sys
import qemu


def _name(path):
    while path.startswith("./"):
        path = path[2:]
    return path.lstrip("/")


class _File:
    def __init__(self, name, mode):
        self.name = name
        self.pos = 0
        if "w" in mode or ("a" in mode and qemu.ramfile(name) is None):
            qemu.ramfile(name, b"")
        elif qemu.ramfile(name) is None:
            raise OSError(2)

    def write(self, data):
        qemu.ramfile(self.name, bytes(data), True)
        return len(data)

    def read(self, n=-1):
        data = qemu.ramfile(self.name)
        out = data[self.pos:] if n < 0 else data[self.pos:self.pos + n]
        self.pos += len(out)
        return out

    def close(self):
        pass


class _os:
    @staticmethod
    def stat(path):
        name = _name(path)
        if name in ("", "."):
            return (0x4000, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        size = qemu.ramfiles().get(name)
        if size is None:
            raise OSError(2)
        return (0x8000, 0, 0, 0, 0, 0, size, 0, 0, 0)

    @staticmethod
    def mkdir(path):
        raise OSError(17)

    @staticmethod
    def remove(path):
        qemu.ramfile(_name(path), None)


sys.modules["os"] = _os


def open(path, mode="r"):  # noqa: A001 (the builtin mpremote calls)
    return _File(_name(path), mode)
