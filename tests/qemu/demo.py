"""make demo: boot the virtual cam, run the demo cam script on it, and drive it from the
host over UART3 like a controller next to a real OpenMV cam would.

    python tests/qemu/demo.py [--stream-seconds 5]
"""

import argparse
import math
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peer  # noqa: E402
from vcam import VirtualCam  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class StopStream(Exception):
    pass


def call(master, name, data=b"", timeout_ms=3000, attempts=3):
    for _ in range(attempts):
        result = master.call(name, data, send_timeout=timeout_ms, recv_timeout=timeout_ms)
        if result is not None:
            return bytes(result)
    raise RuntimeError("%s: no answer from the cam" % name)


def jpeg_size(frame):
    """(width, height) from the SOF0 segment of a JPEG, or None."""
    i = 2
    while i + 4 <= len(frame) and frame[i] == 0xFF:
        marker, length = frame[i + 1], struct.unpack(">H", frame[i + 2:i + 4])[0]
        if marker == 0xC0:
            height, width = struct.unpack(">HH", frame[i + 5:i + 9])
            return width, height
        i += 2 + length
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream-seconds", type=float, default=5.0)
    args = parser.parse_args()

    print("booting the virtual cam (qemu-system-arm -M mps2-an500, Cortex-M7)...")
    with VirtualCam() as cam:
        print("  REPL on %s, rpc UART3 on %s" % (cam.repl.path, cam.uart3_path))
        master = peer.master(cam.uart3_path, "host")
        with open(os.path.join(HERE, "cam", "demo_cam.py")) as f:
            cam.exec_start(f.read())
        cam.wait_for_output("READY")
        print("  cam script running: rpc.rpc_uart_slave(baudrate=115200) on UART3\n")

        # QEMU notices that the host opened the pty on its next poll (up to 1 s): the first
        # call waits for that, and is not the one timed.
        call(master, "apriltag_detection")
        t = time.monotonic()
        frame = call(master, "jpeg_image_snapshot", struct.pack("<HHH", 320, 240, 90))
        dt = time.monotonic() - t
        ok = frame[:2] == b"\xff\xd8" and frame[-2:] == b"\xff\xd9"
        print("jpeg_image_snapshot: %d bytes, %s JPEG %s, in %.0f ms"
              % (len(frame), "x".join(map(str, jpeg_size(frame) or ("?",))),
                 "(SOI..EOI ok)" if ok else "(MALFORMED)", dt * 1000))

        blob = call(master, "color_detection", struct.pack("<6b", 30, 100, 15, 127, 15, 127))
        if blob:
            x, y, w, h, pixels, cx, cy = struct.unpack("<HHHHIHH", blob)
            print("color_detection: largest blob x=%d y=%d w=%d h=%d, %d pixels, centre (%d, %d)"
                  % (x, y, w, h, pixels, cx, cy))
        else:
            print("color_detection: no blob")

        tags = call(master, "apriltag_detection")
        for i in range(0, len(tags), 16):
            tag_id, family, cx, cy, rotation = struct.unpack("<HHfff", tags[i:i + 16])
            print("apriltag_detection: tag %d (TAG36H11) centre (%.1f, %.1f) rotation %.1f deg"
                  % (tag_id, cx, cy, math.degrees(rotation)))

        print("\njpeg_image_stream: 320x240 frames for %.0f s" % args.stream_seconds)
        call(master, "jpeg_image_stream", struct.pack("<HHH", 320, 240, 90))
        stats = {"frames": 0, "bytes": 0, "bad": 0, "shown": 0.0}
        start = time.monotonic()

        def on_frame(frame):
            stats["frames"] += 1
            stats["bytes"] += len(frame)
            if frame[:2] != b"\xff\xd8" or frame[-2:] != b"\xff\xd9":
                stats["bad"] += 1
            elapsed = time.monotonic() - start
            done = elapsed >= args.stream_seconds
            if elapsed - stats["shown"] < 0.25 and not done:
                return
            stats["shown"] = elapsed
            sys.stdout.write("\r  %4d frames  %5.1f frames/s  %7.1f KiB/s  %s"
                             % (stats["frames"], stats["frames"] / elapsed,
                                stats["bytes"] / 1024 / elapsed, "" if not stats["bad"] else
                                "%d malformed" % stats["bad"]))
            sys.stdout.flush()
            if done:
                raise StopStream()

        try:
            master.stream_reader(on_frame, queue_depth=4, read_timeout_ms=5000)
        except StopStream:
            pass
        print()
        if stats["frames"] == 0 or stats["bad"]:
            print("stream FAILED: %(frames)d frames, %(bad)d malformed" % stats)
            return 1
        master.close()
        cam.interrupt()
        rc = cam.close()
    print("\nthe virtual cam shut down (QEMU exit code %s)" % rc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
