# Popular features, the cam side: face detection, AprilTags, QR codes, data matrices,
# barcodes, colour tracking and snapshots, each a callback the controller calls by name.
# Pair: ../popular_features_as_the_controller_device.py
#
# Results (little-endian): a rectangle is <HHHH x, y, w, h; an AprilTag <HHHHHf rectangle,
# id, rotation (radians); codes are their payload text; nothing found is an empty result.
import struct

import rpc

try:
    import image
    import sensor
except ImportError:
    sensor = None

try:
    interface  # set by run_cam_side.py
except NameError:
    interface = rpc.rpc_usb_vcp_slave()
    # interface = rpc.rpc_uart_slave(baudrate=115200)
    # interface = rpc.rpc_network_slave(network_if)

if sensor:
    sensor.reset()
    sensor.set_pixformat(sensor.GRAYSCALE)
    sensor.set_framesize(sensor.QVGA)
    sensor.skip_frames(time=2000)

W, H = 320, 240


def largest(objects, key):
    return max(objects, key=key) if objects else None


def face_detection(data):
    if not sensor:
        return struct.pack("<HHHH", *square(W, H))
    sensor.set_pixformat(sensor.GRAYSCALE)
    faces = sensor.snapshot().find_features(image.HaarCascade("frontalface"))
    face = largest(faces, lambda r: r[2] * r[3])
    return struct.pack("<HHHH", *face) if face else bytes()


def apriltag_detection(data):
    if not sensor:
        x, y, w, h = square(W, H)
        return struct.pack("<HHHHHf", x, y, w, h, 7, (scene_ms() % 6283) / 1000.0)
    sensor.set_pixformat(sensor.GRAYSCALE)
    tag = largest(sensor.snapshot().find_apriltags(), lambda t: t.w() * t.h())
    return struct.pack("<HHHHHf", *tag.rect(), tag.id(), tag.rotation()) if tag else bytes()


def qrcode_detection(data):
    if not sensor:
        return b"https://openmv.io (synthetic QR code)"
    sensor.set_pixformat(sensor.GRAYSCALE)
    code = largest(sensor.snapshot().find_qrcodes(), lambda c: c.w() * c.h())
    return code.payload().encode() if code else bytes()


def datamatrix_detection(data):
    if not sensor:
        return b"synthetic data matrix"
    sensor.set_pixformat(sensor.GRAYSCALE)
    m = largest(sensor.snapshot().find_datamatrices(), lambda c: c.w() * c.h())
    return m.payload().encode() if m else bytes()


def barcode_detection(data):
    if not sensor:
        return b"4006381333931"
    sensor.set_pixformat(sensor.GRAYSCALE)
    code = largest(sensor.snapshot().find_barcodes(), lambda c: c.w() * c.h())
    return code.payload().encode() if code else bytes()


def color_detection(data):
    # data: <bbbbbb, a LAB threshold (l_min, l_max, a_min, a_max, b_min, b_max).
    thresholds = struct.unpack("<bbbbbb", data)
    if not sensor:
        return struct.pack("<HHHH", *square(W, H))
    sensor.set_pixformat(sensor.RGB565)
    blob = largest(sensor.snapshot().find_blobs([thresholds], pixels_threshold=500),
                   lambda b: b.pixels())
    return struct.pack("<HHHH", *blob.rect()) if blob else bytes()


def jpeg_snapshot(data):
    if not sensor:
        return jpeg(W, H)
    sensor.set_pixformat(sensor.RGB565)
    return sensor.snapshot().compress(quality=90).bytearray()


for cb in (face_detection, apriltag_detection, qrcode_detection, datamatrix_detection,
           barcode_detection, color_detection, jpeg_snapshot):
    interface.register_callback(cb)
interface.loop()
