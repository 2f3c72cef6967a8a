# natmod: rpc.mpy and mutex.mpy for every MicroPython architecture the engine has a Rust
# target for, the emulated boards that load them, the mip package, and the many-slave runs.
#
#   make natmod-ARCH   build/natmod-ARCH/rpc.mpy, mutex.mpy for ARCH = armv6m (Cortex-M0/M0+:
#                      Pico), armv7m (Cortex-M3), armv7emsp (Cortex-M4F/M7 SP: OpenMV H7),
#                      armv7emdp (Cortex-M7 DP / M55: OpenMV RT1062, N6, AE3)
#   make natmod-all    all four (x64 is `make unix`)
#   make arch-test     each .mpy loaded and called on the emulated board of its architecture
#                      (tests/arch/), the armv6m objects checked for ARMv6-M instructions only
#   make mip           build/mip/: package.json per architecture + the .mpy files (mpremote mip)
#   make mip-test      mpremote mip install from build/mip into the unix port and a virtual cam
#   make multi-test    many slaves under one master: I2C (8 addresses), CAN (8 ids), SPI (4 CS
#                      pins), network (8 on 127.0.0.x); 500 calls a bus, blocking and call_start
#   make rv32-test     the engine on rv32imc (ESP32-C3 class), bare metal on qemu-system-riscv32
#                      -M virt, replaying the recorded wire vectors (tests/rv32/; no rv32imc
#                      .mpy: the pinned MicroPython core cannot link one)
#   make arch-bench    .mpy size per architecture, instructions per 0 B / 1 KiB call per board,
#                      many-slave calls/s against one slave alone per bus

NATMOD_ARCHS := armv6m armv7m armv7emsp armv7emdp
NATMOD_RUST_TARGETS := thumbv6m-none-eabi thumbv7m-none-eabi thumbv7em-none-eabihf \
	riscv32imc-unknown-none-elf

.PHONY: natmod-deps rv32-deps rv32-test natmod-all $(addprefix natmod-,$(NATMOD_ARCHS)) arch-firmware arch-test \
	arch-bench mip mip-test multi-test

natmod-deps: deps-rust
	@for t in $(NATMOD_RUST_TARGETS); do \
	  rustup target list --installed | grep -qx $$t || rustup target add $$t; done

# qemu-system-riscv32 is in Debian's qemu-system-misc.
rv32-deps: natmod-deps
	@command -v qemu-system-riscv32 >/dev/null || { apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-system-misc; }

rv32-test: rv32-deps deps-py
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/rv32

# One recursive make per ARCH (mp_glue/Makefile); armv7emsp shares natmod-arm's objects.
$(addprefix natmod-,$(NATMOD_ARCHS)): natmod-%: deps-apt natmod-deps deps-mpy deps-py
	$(MAKE) -C mp_glue --no-print-directory natmod ARCH=$* OUT=$(abspath build/natmod-$*) \
	    BUILD=$(abspath build/natmod-$*) MPY_DIR=$(MPY_DIR) PYTHON=$(PYTHON)

natmod-all: $(addprefix natmod-,$(NATMOD_ARCHS))

# The stock-like firmware (no rpc inside, .mpy loading from the RAM file store) per board;
# the an500 one is `make qemu-natmod` (mk/qemu.mk).
ARCH_BOARDS := an385-m0 an385 an386 an500-dp
arch-firmware: deps
	for b in $(ARCH_BOARDS); do \
	  $(MAKE) -C ports/qemu -j2 --no-print-directory BOARD=$$b BUILD=$(abspath build/qemu-natmod-$$b) \
	    MPY_DIR=$(MPY_DIR) WITH_RPC=0 WITH_ENGINE=0 NATMOD=1 >/dev/null || exit 1; done

arch-test: natmod-all arch-firmware qemu-natmod host
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/arch

MIP_DIR := build/mip
mip: natmod-all unix
	$(PYTHON) tests/mip/make_mip.py $(MIP_DIR)

mip-test: mip qemu-natmod
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/mip

multi-test: unix
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/multi

arch-bench: natmod-all arch-firmware qemu-natmod unix
	$(PYTHON) tests/arch/bench_arch.py
	$(PYTHON) tests/multi/bench_multi.py

TEST_TARGETS += arch-test rv32-test mip-test multi-test
BENCH_TARGETS += arch-bench
