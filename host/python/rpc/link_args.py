"""Command-line options that pick a link to a cam, shared by `python -m rpc` and the examples:

    ap = argparse.ArgumentParser(); add_link_arguments(ap); a = ap.parse_args()
    with open_master(a) as interface: ...
"""

import rpc


def add_link_arguments(ap):
    """--usb PORT | --uart PORT [--baud] | --net SLAVE_IP [--my-ip] [--port] | --can IFACE
    [--channel] [--message-id] [--bit-rate], --reference-timing, -v."""
    g = ap.add_argument_group("link (exactly one)")
    x = g.add_mutually_exclusive_group(required=True)
    x.add_argument("--usb", metavar="PORT", help="the cam's USB serial port (rpc_usb_vcp_master)")
    x.add_argument("--uart", metavar="PORT", help="a UART / USB-serial adapter (rpc_uart_master)")
    x.add_argument("--net", metavar="SLAVE_IP", help="the cam's IP address (rpc_network_master)")
    x.add_argument("--can", metavar="INTERFACE", help="a python-can interface (rpc_can_master)")
    g.add_argument("--baud", type=int, default=9600, help="UART baud rate (default 9600)")
    g.add_argument("--my-ip", default="", help="network: the address to bind (default all)")
    g.add_argument("--port", type=lambda s: int(s, 0), default=0x1DBA, help="network port (0x1DBA)")
    g.add_argument("--channel", help="CAN channel (e.g. can0)")
    g.add_argument("--message-id", type=lambda s: int(s, 0), default=0x7FF)
    g.add_argument("--bit-rate", type=int, default=250000)
    ap.add_argument("--reference-timing", action="store_true",
                    help="use the reference timing (no adaptive waits): to compare")
    ap.add_argument("-v", "--verbose", action="count", default=0, help="log (twice: debug)")


def open_master(a):
    if a.usb:
        m = rpc.rpc_usb_vcp_master(a.usb)
    elif a.uart:
        m = rpc.rpc_uart_master(a.uart, baudrate=a.baud)
    elif a.net:
        m = rpc.rpc_network_master(a.net, my_ip=a.my_ip, port=a.port)
    else:
        m = rpc.rpc_can_master(channel=a.channel, interface=a.can, message_id=a.message_id,
                               bit_rate=a.bit_rate)
    if a.reference_timing:
        m.set_timing(adaptive=False, pipeline=False)
    return m
