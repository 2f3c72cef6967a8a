# deps: everything the build and the tests need, installed from the registries named in
# DEVELOPERS.md with pinned versions. Each step is skipped when its result is already there.

MPY_CROSS_SDIST_VERSION := 1.1.1
MPY_CROSS_SDIST := build/dl/mpy_cross_v6_3-$(MPY_CROSS_SDIST_VERSION).tar.gz
MPY_CROSS_SDIST_SHA256 := 55414c358f5844c784e76d3b253cbd7af5f243ddd4c0b47a26d3875d628df300
# MicroPython v1.23.0 core (py/, shared/, tools/, mpy-cross/), unpacked from the sdist.
MPY_DIR := $(abspath build/micropython)
VENV := .venv
MICROPYTHON := $(abspath $(VENV)/bin/micropython)
PYTHON := $(abspath $(VENV)/bin/python)
RUST_ARM_TARGET := thumbv7em-none-eabihf

.PHONY: deps deps-apt deps-rust deps-py deps-mpy

deps: deps-apt deps-rust deps-py deps-mpy

deps-apt:
	@if ! command -v arm-none-eabi-gcc >/dev/null || ! command -v qemu-system-arm >/dev/null \
	    || [ ! -e /usr/lib/arm-none-eabi/newlib/libc.a ]; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm; fi

deps-rust:
	@rustup target list --installed | grep -qx $(RUST_ARM_TARGET) || rustup target add $(RUST_ARM_TARGET)

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@
deps-py: $(VENV)/.installed

$(MPY_CROSS_SDIST):
	mkdir -p $(dir $@)
	python3 -m pip download -q --no-deps --no-binary :all: -d $(dir $@) mpy-cross-v6.3==$(MPY_CROSS_SDIST_VERSION)
	echo "$(MPY_CROSS_SDIST_SHA256)  $@" | sha256sum -c -

$(MPY_DIR)/py/dynruntime.mk: $(MPY_CROSS_SDIST)
	rm -rf build/sdist && mkdir -p build/sdist
	tar xzf $< -C build/sdist
	rm -rf $(MPY_DIR) && mv build/sdist/mpy_cross_v6_3-$(MPY_CROSS_SDIST_VERSION)/micropython $(MPY_DIR)
	rm -rf build/sdist
	touch $@

# mpy-cross, the compiler that freezes and merges Python code.
MPY_CROSS := $(MPY_DIR)/mpy-cross/build/mpy-cross
$(MPY_CROSS): $(MPY_DIR)/py/dynruntime.mk
	$(MAKE) -C $(MPY_DIR)/mpy-cross -j2 >/dev/null

deps-mpy: $(MPY_DIR)/py/dynruntime.mk $(MPY_CROSS)
