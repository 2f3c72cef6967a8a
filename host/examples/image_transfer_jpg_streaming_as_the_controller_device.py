"""JPEG streaming, the controller: ask the cam to stream (jpeg_image_stream), then read frames
with stream_reader; show them (pygame, --show) or save them. Cam side:
cam/image_transfer_jpg_streaming_as_the_remote_device.py.

    python image_transfer_jpg_streaming_as_the_controller_device.py --usb /dev/ttyACM0 --frames 100
"""

import argparse
import os
import sys
import time

from rpc.link_args import add_link_arguments, open_master

from image_transfer_jpg_as_the_controller_device import Viewer


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_link_arguments(ap)
    ap.add_argument("--frames", type=int, help="stop after this many frames (default: never)")
    ap.add_argument("--out", default="stream", help="directory for the JPEG files")
    ap.add_argument("--framesize", default="QQVGA")
    ap.add_argument("--queue-depth", type=int, default=8)
    ap.add_argument("--show", action="store_true", help="show the frames with pygame")
    a = ap.parse_args(argv)
    show = Viewer() if a.show else None
    os.makedirs(a.out, exist_ok=True)
    count = [0]
    start = time.monotonic()

    def jpg_frame_buffer_cb(frame):
        count[0] += 1
        if show:
            show.frame(bytes(frame))
        else:
            with open(os.path.join(a.out, "frame_%05d.jpg" % count[0]), "wb") as f:
                f.write(frame)
        sys.stdout.write("\r%d frames, %.1f fps " % (count[0], count[0] / (time.monotonic() - start)))
        sys.stdout.flush()
        return a.frames is None or count[0] < a.frames  # False ends the stream

    with open_master(a) as interface:
        while a.frames is None or count[0] < a.frames:
            # The cam starts streaming once this call's answer is taken. A stream ends on a
            # link error (or when we stop it); then it is simply asked for again.
            if interface.call("jpeg_image_stream", "sensor.RGB565,sensor.%s" % a.framesize,
                              send_timeout=2000) is None:
                print("\nno stream: %s" % interface.last_error, file=sys.stderr)
                continue
            interface.stream_reader(jpg_frame_buffer_cb, queue_depth=a.queue_depth,
                                    read_timeout_ms=5000)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
