# JPEG streaming, the cam side: jpeg_image_stream sets the sensor up, then (once its answer
# is taken) the cam writes frames with stream_writer until the controller stops reading.
# Pair: ../image_transfer_jpg_streaming_as_the_controller_device.py
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

stream = [(160, 120), 0]


def stream_generator_cb():
    if sensor:
        return sensor.snapshot().compress(quality=90).bytearray()
    stream[1] += 1
    return jpeg(stream[0][0], stream[0][1], stream[1])


def start_streaming():
    interface.stream_writer(stream_generator_cb)


def jpeg_image_stream(data):
    if sensor:
        pixformat, framesize = bytes(data).decode().split(",")
        sensor.set_pixformat(getattr(sensor, pixformat.strip().split(".")[-1]))
        sensor.set_framesize(getattr(sensor, framesize.strip().split(".")[-1]))
    else:
        stream[0] = frame_size(data)
    interface.schedule_callback(start_streaming)
    return bytes()


interface.register_callback(jpeg_image_stream)
interface.loop()
