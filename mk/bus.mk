# bus: the I2C, SPI and CAN transports on the simulated buses (tests/bus/).
#   make bus-test    the simulator's own tests, then every transport in both roles on it
#                    (sizes to 64 KiB, streams, overrides, 500 calls in a row, faults)
#   make bus-bench   payload throughput (fraction of the raw bit rate) and 0 B call latency
#                    per bus, at 100 kHz I2C, 1 MHz SPI, 250 kbit/s CAN

.PHONY: bus-test bus-bench

bus-test: unix
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/bus

bus-bench: unix
	$(PYTHON) tests/bus/bench_bus.py

TEST_TARGETS += bus-test
BENCH_TARGETS += bus-bench
