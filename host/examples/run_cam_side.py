"""Run an example's cam-side script where there is no OpenMV cam: on this project's virtual
cam (QEMU, UART3 on a pty) or in the MicroPython unix port (network or a pty), with the
synthetic scene (cam/synthetic_scene.py) standing in for the sensor.

    python run_cam_side.py --qemu cam/image_transfer_jpg_as_the_remote_device.py
        -> prints "UART3 /dev/pts/N": python image_transfer_...controller_device.py --uart /dev/pts/N --baud 115200
    python run_cam_side.py --unix-net 127.0.0.2 7610 cam/popular_features_as_the_remote_device.py
        -> python popular_features_as_the_controller_device.py --net 127.0.0.2 --my-ip 127.0.0.1
    python run_cam_side.py --unix-pty /dev/pts/N cam/...   (the cam end of a serial line)

It prints READY when the cam serves, then runs until stdin closes or Ctrl-C.
"""

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
MICROPYTHON = os.environ.get("MICROPYTHON", os.path.join(REPO, ".venv", "bin", "micropython"))


def cam_source(script, prelude):
    """The script as the cam runs it: `interface` set first, the synthetic scene in front,
    READY printed when it starts serving."""
    with open(os.path.join(HERE, "cam", "synthetic_scene.py")) as f:
        scene = f.read()
    with open(script) as f:
        body = f.read()
    marker = "\ninterface.loop()"
    if marker not in body:
        raise SystemExit("%s does not end in interface.loop()" % script)
    body = body.replace(marker, "\nprint('READY')" + marker)
    return "import rpc\n" + prelude + "\n" + scene + "\n" + body


def wait_for_stdin_close():
    try:
        while sys.stdin.read(1024):
            pass
    except KeyboardInterrupt:
        pass


def run_unix(source, name):
    out_dir = os.path.join(REPO, "build", "host", "cam")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name)
    with open(path, "w") as f:
        f.write(source)
    env = dict(os.environ, MICROPYPATH=os.path.join(REPO, "build", "unix"))
    proc = subprocess.Popen([MICROPYTHON, path], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if line.strip() == "READY":
            break
    else:
        raise SystemExit("the cam script ended: exit %s" % proc.wait())
    try:
        wait_for_stdin_close()
    finally:
        proc.kill()
        proc.wait()


def run_qemu(source):
    sys.path.insert(0, os.path.join(REPO, "tests", "qemu"))
    from vcam import VirtualCam

    with VirtualCam() as cam:
        cam.exec_start(source)
        cam.wait_for_output("READY")
        print("UART3", cam.uart3_path)
        print("READY", flush=True)
        wait_for_stdin_close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--qemu", action="store_true", help="the virtual cam (UART3, 115200)")
    where.add_argument("--unix-net", nargs=2, metavar=("MY_IP", "PORT"))
    where.add_argument("--unix-pty", metavar="PATH")
    ap.add_argument("script")
    a = ap.parse_args()
    name = os.path.basename(a.script)
    if a.qemu:
        run_qemu(cam_source(a.script, "interface = rpc.rpc_uart_slave(baudrate=115200)"))
    elif a.unix_net:
        ip, port = a.unix_net
        run_unix(cam_source(a.script, "interface = rpc.rpc_network_slave(my_ip=%r, port=%d)"
                            % (ip, int(port, 0))), name)
    else:
        run_unix(cam_source(a.script, "interface = rpc.rpc_stream_slave(open(%r, 'r+b'))"
                            % a.unix_pty), name)


if __name__ == "__main__":
    main()
