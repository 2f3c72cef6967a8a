"""make demo, Protocol V2 part: the official `openmv` package drives the virtual cam over
the IDE's link (UART4), then a PC calls functions on the cam over that same link."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from conftest import FIRMWARE, SERIAL, Stdout, VirtualCam, cam_script, connect, has_channel, wait_for  # noqa: E402

import rpc  # noqa: E402


def main():
    with VirtualCam(firmware=FIRMWARE, serial=SERIAL) as vcam:
        port = vcam.uart_paths[4]
        print("virtual cam up; Protocol V2 on", port)
        cam = connect(port, timeout=3.0)
        info = cam.system_info()
        print("system_info: cpu_id=0x%08X usb=%04X:%04X sensor=0x%X flash=%d KiB ram=%d KiB"
              % (info["cpu_id"], info["usb_vid"], info["usb_pid"], info["chip_id"][0],
                 info["flash_size_kb"], info["ram_size_kb"]))
        print("version:", cam.version())
        out = Stdout(cam)
        out.read()
        cam.exec("import sys\nprint('hello from', sys.platform, 'sum =', sum(range(100)))\n")
        print("script stdout:", out.wait_for("sum =").strip().splitlines()[-1])
        cam.streaming(True)
        n = 0
        while n < 3:
            f = cam.read_frame()
            if f:
                n += 1
                print("stream frame %d: %dx%d, %d bytes raw" % (n, f["width"], f["height"], f["raw_size"]))
        cam.streaming(False)
        cam.exec(cam_script("rpc_slave.py"))
        out.wait_for("rpc slave ready")
        wait_for(lambda: has_channel(cam, "rpc"))
        master = rpc.rpc_omv_camera_master(cam, channel="rpc")
        master.set_timing(bytes_per_s=8000)
        r = master.call("echo", b"hello over the IDE's link", send_timeout=5000, recv_timeout=5000)
        print("rpc echo (openmv Camera adapter):", None if r is None else bytes(r))
        r = master.call("length", bytes(3000), send_timeout=10000, recv_timeout=10000)
        print("rpc length of 3000 bytes:", None if r is None else bytes(r).decode())
        cam.disconnect()
        own = rpc.rpc_omv_master(port, channel="rpc")
        own.set_timing(bytes_per_s=8000)
        r = own.call("echo", b"and with rpc.rpc_omv_master, no openmv package", send_timeout=5000, recv_timeout=5000)
        print("rpc echo (our host role):", None if r is None else bytes(r))
        own.close()


if __name__ == "__main__":
    main()
