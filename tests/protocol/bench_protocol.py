"""Protocol V2 on the virtual cam: figures, printed (make protocol-bench).

Rates (wall clock, QEMU without -icount): version() calls/s and stream frames/s and MB/s
with the official `openmv` package; rpc calls/s over the "rpc" channel (through the
package's Camera, and through our own host role rpc_omv_master) next to rpc over the plain
UART3. Then the same cam under -icount shift=0, where the cam's qemu.busy_ns() counts
instructions: instructions per stream frame and per rpc call (read through a "meter"
channel around N operations; the meter reads themselves are included, once per N).
"""
import os
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from conftest import FIRMWARE, Stdout, VirtualCam, cam_script, connect, has_channel, wait_for  # noqa: E402

import rpc  # noqa: E402

SERIAL = ["pty", "null", "null", "pty", "pty"]     # REPL, -, -, UART3 (plain rpc), UART4 (V2)


def rate(n, fn):
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t)


def meter(camera):
    return struct.unpack("<Q", camera.channel_read("meter", 8))[0]


def per_op(camera, n, fn):
    b0 = meter(camera)
    for _ in range(n):
        fn()
    return (meter(camera) - b0) / n


def frames(camera, n):
    got = 0
    size = 0
    while got < n:
        f = camera.read_frame()
        if f:
            got += 1
            size += f["raw_size"] + 20
    return size


def run(icount):
    with VirtualCam(firmware=FIRMWARE, serial=SERIAL, icount=icount) as vcam:
        cam = connect(vcam.uart_paths[4], timeout=3.0)
        out = Stdout(cam)
        cam.exec(cam_script("bench_cam.py"))
        assert out.wait_for("bench cam ready")
        assert wait_for(lambda: has_channel(cam, "rpc") and has_channel(cam, "meter"))
        master = rpc.rpc_omv_camera_master(cam, channel="rpc")
        master.set_timing(bytes_per_s=8000)
        call0 = lambda: master.call("echo", b"", send_timeout=5000, recv_timeout=5000)  # noqa: E731
        data4k = bytes(4096)
        call4k = lambda: master.call("echo", data4k, send_timeout=10000, recv_timeout=10000)  # noqa: E731
        if not icount:
            print("version() over Protocol V2 (openmv package): %.0f calls/s" % rate(50, cam.version))
            cam.streaming(True)
            t = time.perf_counter()
            size = frames(cam, 20)
            dt = time.perf_counter() - t
            print("stream (160x120 grayscale + header): %.1f frames/s, %.2f MB/s" % (20 / dt, size / dt / 1e6))
            cam.streaming(False)
            print("rpc over the channel, Camera adapter, 0 B: %.1f calls/s" % rate(20, call0))
            print("rpc over the channel, Camera adapter, 4 KiB echo: %.2f calls/s" % rate(3, call4k))
        else:
            cam.streaming(True)
            frames(cam, 1)
            b0 = meter(cam)
            frames(cam, 5)
            print("[icount] instructions per stream frame (lock, size, read, unlock + retries): %.0f"
                  % ((meter(cam) - b0) / 5))
            cam.streaming(False)
            call0()
            print("[icount] instructions per rpc call over the channel, 0 B: %.0f" % per_op(cam, 10, call0))
            print("[icount] instructions per CHANNEL_SIZE poll (one V2 round trip): %.0f"
                  % per_op(cam, 20, lambda: cam.channel_size("rpc")))
        cam.stop()
        wait_for(lambda: not cam.read_status()["stdin"])
        out = Stdout(cam)
        out.read()
        cam.exec(cam_script("bench_uart.py"))
        assert out.wait_for("bench uart ready")
        assert wait_for(lambda: has_channel(cam, "meter"))
        uart = rpc.rpc_uart_master(vcam.uart_paths[3], baudrate=115200)
        ucall0 = lambda: uart.call("echo", b"", send_timeout=5000, recv_timeout=5000)  # noqa: E731
        ucall0()
        if not icount:
            print("rpc over the plain UART3, 0 B: %.1f calls/s" % rate(20, ucall0))
        else:
            print("[icount] instructions per rpc call over the plain UART3, 0 B: %.0f" % per_op(cam, 10, ucall0))
        uart.close()
        cam.stop()
        cam.disconnect()


def own_host_rate():
    with VirtualCam(firmware=FIRMWARE, serial=SERIAL) as vcam:
        cam = connect(vcam.uart_paths[4], timeout=3.0)
        out = Stdout(cam)
        cam.exec(cam_script("bench_cam.py"))
        assert out.wait_for("bench cam ready")
        assert wait_for(lambda: has_channel(cam, "rpc"))
        cam.disconnect()
        m = rpc.rpc_omv_master(vcam.uart_paths[4], channel="rpc")
        m.set_timing(bytes_per_s=8000)
        f = lambda: m.call("echo", b"", send_timeout=5000, recv_timeout=5000)  # noqa: E731
        f()
        print("rpc over the channel, our host role (rpc_omv_master), 0 B: %.1f calls/s" % rate(20, f))
        m.close()


if __name__ == "__main__":
    run(icount=False)
    own_host_rate()
    run(icount=True)
