# Image transfer, the cam side: the controller asks for a snapshot (jpeg_image_snapshot) and
# reads the JPEG in pieces (jpeg_image_read). Pair: ../image_transfer_jpg_as_the_controller_device.py
#
# On an OpenMV cam pick the interface below. Without a sensor (the virtual cam, the unix
# port) run it with ../run_cam_side.py, which sets `interface` and supplies a synthetic scene.
import struct

import rpc

try:
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
    sensor.set_pixformat(sensor.RGB565)
    sensor.set_framesize(sensor.QVGA)
    sensor.skip_frames(time=2000)

frame = [b"", 0]


def setup_sensor(data):
    # data: b"sensor.RGB565,sensor.QQVGA" (the desktop examples' convention)
    if sensor:
        pixformat, framesize = bytes(data).decode().split(",")
        sensor.set_pixformat(getattr(sensor, pixformat.strip().split(".")[-1]))
        sensor.set_framesize(getattr(sensor, framesize.strip().split(".")[-1]))


def snapshot_jpeg(data):
    if sensor:
        return sensor.snapshot().compress(quality=90).bytearray()
    w, h = frame_size(data)
    frame[1] += 1
    return jpeg(w, h, frame[1])


def jpeg_image_snapshot(data):
    setup_sensor(data)
    frame[0] = snapshot_jpeg(data)
    return struct.pack("<I", len(frame[0]))


def jpeg_image_read(data):
    # No argument: the whole image; else <II: offset, size.
    if not len(data):
        return frame[0]
    offset, size = struct.unpack("<II", data)
    return memoryview(frame[0])[offset:offset + size]


interface.register_callback(jpeg_image_snapshot)
interface.register_callback(jpeg_image_read)
interface.loop()
