"""Image transfer, the controller: ask the cam for a JPEG snapshot, read it in pieces, show it
(pygame, when installed and --show is given) or save it. Cam side:
cam/image_transfer_jpg_as_the_remote_device.py.

    python image_transfer_jpg_as_the_controller_device.py --usb /dev/ttyACM0 --frames 10 --out frames
"""

import argparse
import os
import struct
import sys
import time

from rpc.link_args import add_link_arguments, open_master

CHUNK = 32 * 1024  # bytes per jpeg_image_read call


def get_frame(interface, pixformat_framesize):
    result = interface.call("jpeg_image_snapshot", pixformat_framesize)
    if result is None:
        return None
    size = struct.unpack("<I", result)[0]
    img = bytearray(size)
    for offset in range(0, size, CHUNK):
        n = min(CHUNK, size - offset)
        for _ in range(3):  # a failed read is simply asked again
            part = interface.call("jpeg_image_read", struct.pack("<II", offset, n))
            if part is not None and len(part) == n:
                img[offset:offset + n] = part
                break
        else:
            return None
    return bytes(img)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_link_arguments(ap)
    ap.add_argument("--frames", type=int, help="stop after this many frames (default: never)")
    ap.add_argument("--out", default="frames", help="directory for the JPEG files")
    ap.add_argument("--framesize", default="QQVGA", help="QQVGA, QVGA, VGA...")
    ap.add_argument("--show", action="store_true", help="show the frames with pygame")
    a = ap.parse_args(argv)
    show = Viewer() if a.show else None
    os.makedirs(a.out, exist_ok=True)
    got = 0
    start = time.monotonic()
    with open_master(a) as interface:
        while a.frames is None or got < a.frames:
            jpg = get_frame(interface, "sensor.RGB565,sensor.%s" % a.framesize)
            if jpg is None:
                print("no frame: %s" % interface.last_error, file=sys.stderr)
                continue
            got += 1
            if show:
                show.frame(jpg)
            else:
                with open(os.path.join(a.out, "frame_%05d.jpg" % got), "wb") as f:
                    f.write(jpg)
            print("frame %d: %d bytes, %.1f fps" % (got, len(jpg), got / (time.monotonic() - start)))
    return 0


class Viewer:
    """A pygame window (pygame is optional: pip install pygame)."""

    def __init__(self):
        import pygame

        self.pygame = pygame
        pygame.init()
        self.screen = None

    def frame(self, jpg):
        import io

        pygame = self.pygame
        surface = pygame.image.load(io.BytesIO(jpg), "frame.jpg")
        if self.screen is None:
            self.screen = pygame.display.set_mode(surface.get_size())
        self.screen.blit(surface, (0, 0))
        pygame.display.flip()
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
