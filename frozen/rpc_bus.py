# rpc_bus: the I2C, SPI and CAN classes of the rpc library, with their documented defaults.
# The transports are C (mp_glue/transport_i2c.c, transport_spi.c, transport_can.c): they
# build the bus objects themselves (machine where the port has what is needed, pyb for the
# slave modes and CAN) and raise OSError naming what a port lacks.
# In the native module this file is merged into rpc (the names below are already there); in
# firmware it is its own frozen module that rpc.py imports at its end.
try:
    rpc_master
except NameError:
    from rpc import rpc_master, rpc_slave
    from _rpc import (
        i2c_master_transport,
        i2c_slave_transport,
        spi_master_transport,
        spi_slave_transport,
        can_transport,
    )


class rpc_i2c_master(rpc_master):
    def __init__(self, slave_addr=0x12, rate=100000, i2c_bus=2):
        rpc_master.__init__(self, i2c_master_transport(slave_addr, rate, i2c_bus))


class rpc_i2c_slave(rpc_slave):
    def __init__(self, slave_addr=0x12, i2c_bus=2):
        rpc_slave.__init__(self, i2c_slave_transport(slave_addr, i2c_bus))


class rpc_spi_master(rpc_master):
    def __init__(self, cs_pin="P3", freq=1000000, clk_polarity=1, clk_phase=0, spi_bus=2):
        rpc_master.__init__(self, spi_master_transport(cs_pin, freq, clk_polarity, clk_phase, spi_bus))


class rpc_spi_slave(rpc_slave):
    def __init__(self, cs_pin="P3", clk_polarity=1, clk_phase=0, spi_bus=2):
        rpc_slave.__init__(self, spi_slave_transport(cs_pin, clk_polarity, clk_phase, spi_bus))


class rpc_can_master(rpc_master):
    def __init__(self, message_id=0x7FF, bit_rate=250000, sample_point=75, can_bus=2):
        rpc_master.__init__(self, can_transport(message_id, bit_rate, sample_point, can_bus))


class rpc_can_slave(rpc_slave):
    def __init__(self, message_id=0x7FF, bit_rate=250000, sample_point=75, can_bus=2):
        rpc_slave.__init__(self, can_transport(message_id, bit_rate, sample_point, can_bus))
