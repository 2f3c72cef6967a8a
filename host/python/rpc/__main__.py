"""python -m rpc: call a function on a cam, stream its frames to files, or measure the link.

    python -m rpc --usb /dev/ttyACM0 call digital_read
    python -m rpc --net 192.168.1.20 call jpeg_image_snapshot --data "sensor.RGB565,sensor.QQVGA" --unpack "<I"
    python -m rpc --uart /dev/ttyUSB0 --baud 115200 call jpeg_image_read --data-hex 00000000 --out part.bin
    python -m rpc --usb /dev/ttyACM0 stream jpeg_image_stream --data "sensor.RGB565,sensor.QQVGA" --out-dir frames --count 100
    python -m rpc --usb /dev/ttyACM0 measure --name echo --size 4096

Exit status: 0 when it worked, 1 when the cam did not answer (the reason goes to stderr), 2 for
bad usage.
"""

import argparse
import logging
import os
import struct
import sys
import time

import rpc
from rpc.link_args import add_link_arguments, open_master


def _data_args(ap):
    d = ap.add_mutually_exclusive_group()
    d.add_argument("--data", default="", help="argument as text (UTF-8)")
    d.add_argument("--data-hex", help="argument as hex bytes")
    d.add_argument("--data-file", help="argument read from a file")
    d.add_argument("--pack", nargs="+", metavar=("FMT", "VALUE"),
                   help="argument packed with struct: --pack '<II' 320 240")
    ap.add_argument("--send-timeout", type=int, default=1000, help="ms (default 1000)")
    ap.add_argument("--recv-timeout", type=int, default=1000, help="ms (default 1000)")
    ap.add_argument("--tries", type=int, default=1, help="call up to this many times")


def argument(a):
    if a.data_hex is not None:
        return bytes.fromhex(a.data_hex)
    if a.data_file is not None:
        with open(a.data_file, "rb") as f:
            return f.read()
    if a.pack:
        fmt, values = a.pack[0], a.pack[1:]
        return struct.pack(fmt, *(_number(v) for v in values))
    return a.data.encode()


def _number(v):
    try:
        return int(v, 0)
    except ValueError:
        return float(v)


def call_with_tries(m, name, data, a):
    for _ in range(max(1, a.tries)):
        r = m.call(name, data, a.send_timeout, a.recv_timeout)
        if r is not None:
            return r
    return None


def show(result, a):
    raw = bytes(result)
    if a.out:
        with open(a.out, "wb") as f:
            f.write(raw)
        print("%d bytes -> %s" % (len(raw), a.out))
        return
    if a.unpack:
        print(struct.unpack(a.unpack, raw))
        return
    if a.format == "hex" or (a.format == "auto" and not _printable(raw)):
        print(raw.hex())
    else:
        print(raw.decode("utf-8", errors="replace"))


def _printable(raw):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\r\n\t" for c in text)


def cmd_call(a):
    with open_master(a) as m:
        r = call_with_tries(m, a.name, argument(a), a)
        if r is None:
            print("call %s failed: %s" % (a.name, m.last_error), file=sys.stderr)
            return 1
        show(r, a)
    return 0


class Progress:
    def __init__(self, stream):
        self.stream = stream
        self.start = time.monotonic()
        self.frames = 0
        self.bytes = 0
        self.last = 0.0

    def update(self, n, final=False):
        self.frames += 1 if n is not None else 0
        self.bytes += n or 0
        now = time.monotonic()
        if final or now - self.last >= 0.25:
            self.last = now
            dt = max(now - self.start, 1e-6)
            self.stream.write("\r%6d frames  %8.2f MB  %6.1f fps  %6.2f MB/s"
                              % (self.frames, self.bytes / 1e6, self.frames / dt, self.bytes / 1e6 / dt))
            if final:
                self.stream.write("\n")
            self.stream.flush()


def cmd_stream(a):
    os.makedirs(a.out_dir, exist_ok=True)
    progress = Progress(sys.stderr)
    with open_master(a) as m:
        while a.count is None or progress.frames < a.count:
            if call_with_tries(m, a.name, argument(a), a) is None:
                print("\ncall %s failed: %s" % (a.name, m.last_error), file=sys.stderr)
                break

            def keep(frame):
                path = os.path.join(a.out_dir, "%s%06d%s" % (a.prefix, progress.frames, a.suffix))
                with open(path, "wb") as f:
                    f.write(frame)
                progress.update(len(frame))
                return a.count is None or progress.frames < a.count

            m.stream_reader(keep, queue_depth=a.queue_depth, read_timeout_ms=a.read_timeout)
            if a.once:
                break
        progress.update(None, final=True)
        print("%d frames in %s" % (progress.frames, a.out_dir))
        return 0 if progress.frames and (a.count is None or progress.frames >= a.count) else 1


def _percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))] if s else float("nan")


def cmd_measure(a):
    data = bytes(i & 0xFF for i in range(a.size))
    times = []
    moved = 0
    with open_master(a) as m:
        start = time.monotonic()
        for _ in range(a.count):
            t0 = time.monotonic()
            r = m.call(a.name, data)
            if r is not None:
                times.append(time.monotonic() - t0)
                moved += len(data) + len(r)
        elapsed = time.monotonic() - start
        link = m.link()
        stats = m.stats()
    ok = len(times)
    print("calls        %d/%d ok in %.2f s: %.1f calls/s" % (ok, a.count, elapsed, ok / elapsed))
    if ok:
        print("call time    p50 %.2f ms  p95 %.2f ms  max %.2f ms"
              % (1e3 * _percentile(times, 0.5), 1e3 * _percentile(times, 0.95), 1e3 * max(times)))
        print("payload      %.3f MB/s (argument + result, %d bytes each way asked)"
              % (moved / elapsed / 1e6, a.size))
    print("link         round trip %.2f ms (+-%.2f), reply wait %.1f ms, rate %s"
          % (link["srtt_ms"], link["rttvar_ms"], link["reply_timeout_ms"],
             "%.0f B/s" % link["bytes_per_s"] if link["bytes_per_s"] else "not measured"))
    print("engine       retries %d, timeouts %d, bad crc %d, bad magic %d"
          % (stats["retries"], stats["timeouts"], stats["bad_crc"], stats["bad_magic"]))
    return 0 if ok else 1


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m rpc", description=__doc__.split("\n\n")[0])
    add_link_arguments(ap)
    sub = ap.add_subparsers(dest="command", required=True)

    c = sub.add_parser("call", help="call a function and print or save its result")
    c.add_argument("name")
    _data_args(c)
    c.add_argument("--out", help="write the result to this file")
    c.add_argument("--unpack", metavar="FMT", help="print the result unpacked with struct")
    c.add_argument("--format", choices=("auto", "text", "hex"), default="auto")
    c.set_defaults(func=cmd_call)

    s = sub.add_parser("stream", help="call a function that starts a stream; save its frames")
    s.add_argument("name")
    _data_args(s)
    s.add_argument("--out-dir", required=True)
    s.add_argument("--count", type=int, help="stop after this many frames (default: Ctrl-C)")
    s.add_argument("--prefix", default="frame_")
    s.add_argument("--suffix", default=".jpg")
    s.add_argument("--queue-depth", type=int, default=4)
    s.add_argument("--read-timeout", type=int, default=5000, help="ms per frame")
    s.add_argument("--once", action="store_true", help="do not restart a stream that ended")
    s.set_defaults(func=cmd_stream)

    me = sub.add_parser("measure", help="calls/s, MB/s and the link's round trip")
    me.add_argument("--name", default="echo",
                    help="a function that returns its argument (an unknown name measures "
                         "round trips only: the cam answers it with an empty result)")
    me.add_argument("--size", type=int, default=0, help="argument bytes per call")
    me.add_argument("--count", type=int, default=200)
    me.set_defaults(func=cmd_measure)

    a = ap.parse_args(argv)
    logging.basicConfig(level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(a.verbose, 2)],
                        format="%(name)s: %(message)s")
    try:
        return a.func(a)
    except KeyboardInterrupt:
        return 1
    except (OSError, ImportError, ValueError, struct.error) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
