# qemu: the virtual cam, a MicroPython port of our own for qemu-system-arm -M mps2-an500
# (Cortex-M7) in ports/qemu/, with the rpc module linked in as a custom OpenMV firmware
# links it. Host-side tests, the demo controller and the benchmark live in tests/qemu/.
#
#   make qemu         build/qemu/firmware.elf
#   make qemu-natmod  build/qemu-natmod/firmware.elf: "stock firmware", without the rpc
#                     module but able to load native modules (.mpy) from a RAM file store
#   make qemu-test    the port and rpc on the cam against a host peer over UART3 (a pty),
#                     also rpc.mpy/mutex.mpy (make natmod-arm) copied onto the stock firmware
#   make demo         boot the cam, run the demo controller against it, shut it down
#   make qemu-bench   instructions per CRC byte and per call (QEMU -icount), image size,
#                     rpc.mpy on the stock firmware (copy, import, calls)

QEMU_BUILD := $(abspath build/qemu)
QEMU_FIRMWARE := $(QEMU_BUILD)/firmware.elf
QEMU_NATMOD_BUILD := $(abspath build/qemu-natmod)
# The rpc module goes in once its glue and shim are there; QEMU_WITH_RPC=0 builds the bare port.
QEMU_WITH_RPC ?= $(if $(and $(wildcard mp_glue/micropython.mk),$(wildcard frozen/manifest.py)),1,0)

.PHONY: qemu qemu-natmod qemu-test qemu-bench demo

# The sub-make tracks its own dependencies (sources, the engine archive, the manifest). The
# engine archive is always linked: without the glue it still serves the qemu.bench_crc hook.
qemu: deps engine-arm
	$(MAKE) -C ports/qemu -j2 BUILD=$(QEMU_BUILD) MPY_DIR=$(MPY_DIR) WITH_RPC=$(QEMU_WITH_RPC) \
	  WITH_ENGINE=1 RUST_LIB=$(abspath $(ENGINE_LIB_ARM))

# The bare port (no glue, no engine) with .mpy loading and the RAM file store (NATMOD=1).
qemu-natmod: deps
	$(MAKE) -C ports/qemu -j2 BUILD=$(QEMU_NATMOD_BUILD) MPY_DIR=$(MPY_DIR) WITH_RPC=0 \
	  WITH_ENGINE=0 NATMOD=1

# The host peers: bench/ref_rpc.py (no build) and the host package (`host`, host/).
# tests/qemu/test_natmod.py copies the armv7emsp modules (natmod-arm, mk/unix.mk) onto
# the qemu-natmod firmware.
qemu-test: qemu qemu-natmod natmod-arm host
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/qemu

demo: deps qemu host
	$(PYTHON) tests/qemu/demo.py

qemu-bench: qemu qemu-natmod natmod-arm host
	$(PYTHON) tests/qemu/bench.py

TEST_TARGETS += qemu-test
BENCH_TARGETS += qemu-bench
