"""Popular features, the controller: call the cam's face detection, AprilTag, QR code, data
matrix, barcode and colour tracking functions and print what they found; save a snapshot.
Cam side: cam/popular_features_as_the_remote_device.py.

    python popular_features_as_the_controller_device.py --usb /dev/ttyACM0 --rounds 3
"""

import argparse
import struct
import sys

from rpc.link_args import add_link_arguments, open_master


def rect(result):
    return "x=%d y=%d w=%d h=%d" % struct.unpack("<HHHH", result)


def apriltag(result):
    x, y, w, h, tag_id, rotation = struct.unpack("<HHHHHf", result)
    return "id=%d rotation=%.2f rad at x=%d y=%d w=%d h=%d" % (tag_id, rotation, x, y, w, h)


def text(result):
    return repr(bytes(result).decode("utf-8", errors="replace"))


# (function on the cam, argument, how to show its result)
FEATURES = [
    ("face_detection", b"", rect),
    ("apriltag_detection", b"", apriltag),
    ("qrcode_detection", b"", text),
    ("datamatrix_detection", b"", text),
    ("barcode_detection", b"", text),
    # A LAB threshold for red things: L 30..100, A 15..127, B 15..127.
    ("color_detection", struct.pack("<bbbbbb", 30, 100, 15, 127, 15, 127), rect),
]


def call(interface, name, arg=b"", recv_timeout=1000, tries=3):
    """A call that is asked again when it gets no answer (a busy cam, a noisy link)."""
    for _ in range(tries):
        result = interface.call(name, arg, recv_timeout=recv_timeout)
        if result is not None:
            return result
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_link_arguments(ap)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--snapshot", default="snapshot.jpg", help="where to save a JPEG snapshot")
    a = ap.parse_args(argv)
    failures = 0
    with open_master(a) as interface:
        for _ in range(a.rounds):
            for name, arg, show in FEATURES:
                result = call(interface, name, arg)
                if result is None:
                    failures += 1
                    print("%-22s no answer: %s" % (name, interface.last_error))
                elif not len(result):
                    print("%-22s nothing found" % name)
                else:
                    print("%-22s %s" % (name, show(result)))
        jpg = call(interface, "jpeg_snapshot", recv_timeout=3000)
        if jpg is None:
            failures += 1
            print("jpeg_snapshot          no answer: %s" % interface.last_error)
        else:
            with open(a.snapshot, "wb") as f:
                f.write(jpg)
            print("jpeg_snapshot          %d bytes -> %s" % (len(jpg), a.snapshot))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
