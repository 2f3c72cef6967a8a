"""rpc: call functions on an OpenMV cam (or any peer of the OpenMV rpc protocol) from a computer.

The classes of the OpenMV desktop rpc library, on the omv-rpc Rust engine:

    import rpc
    with rpc.rpc_usb_vcp_master("/dev/ttyACM0") as interface:
        result = interface.call("digital_read")       # memoryview, or None on failure
        print(interface.last_error, interface.stats())

Layout: `rpc._engine` (Rust, host/src/) drives the engine of the repository's root crate;
`_base` holds the documented rpc/rpc_master/rpc_slave; `_serial`, `_network` and `_can`
only move bytes (pyserial, sockets, python-can).
"""

from ._base import RpcError, crc16, name_hash, rpc, rpc_master, rpc_slave
from ._can import (
    rpc_can_master,
    rpc_can_slave,
    rpc_kvarser_can_master,
    rpc_kvarser_can_slave,
)
from ._network import rpc_network_master, rpc_network_slave
from ._omv import OmvLink, rpc_omv_camera_master, rpc_omv_camera_slave, rpc_omv_master, rpc_omv_slave
from ._serial import rpc_uart_master, rpc_uart_slave, rpc_usb_vcp_master, rpc_usb_vcp_slave
from ._stream import rpc_stream_master, rpc_stream_slave

__all__ = [
    "RpcError",
    "crc16",
    "name_hash",
    "rpc",
    "rpc_master",
    "rpc_slave",
    "rpc_usb_vcp_master",
    "rpc_usb_vcp_slave",
    "rpc_uart_master",
    "rpc_uart_slave",
    "rpc_network_master",
    "rpc_network_slave",
    "rpc_can_master",
    "rpc_can_slave",
    "rpc_kvarser_can_master",
    "rpc_kvarser_can_slave",
    "rpc_stream_master",
    "rpc_stream_slave",
    "rpc_omv_camera_master",
    "rpc_omv_camera_slave",
    "rpc_omv_master",
    "rpc_omv_slave",
    "OmvLink",
]
