# protocol: OpenMV Protocol V2 (the IDE's link) in protocol/, a no_std sans-IO crate of its
# own (omv_protocol) with device and host roles, and the official `openmv` package (PyPI,
# pinned in requirements-py312.txt) in a CPython 3.12 venv to drive it.
#
#   make protocol-test   the crate's tests: vectors recorded from openmv 1.0.7 byte for byte,
#                        properties (no panic on any bytes), a lossy simulated link
#   make protocol-record re-record protocol/vectors/ from the official package and check
#                        that they are the committed ones

PROTO_VENV := .venv312
PROTO_PYTHON := $(abspath $(PROTO_VENV)/bin/python)
# pyenv's own 3.12 first: its python3.12 shim fails unless 3.12 is the active version.
PY312 ?= $(shell ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | head -1 | grep . || command -v python3.12 2>/dev/null)

.PHONY: protocol-test protocol-record deps-py312

$(PROTO_VENV)/.installed: requirements-py312.txt
	$(PY312) -m venv $(PROTO_VENV)
	$(PROTO_VENV)/bin/pip install -q -r requirements-py312.txt
	touch $@
deps-py312: $(PROTO_VENV)/.installed
deps: deps-py312

protocol-test: deps-rust protocol-record
	cd protocol && $(CARGO) test -j2 --locked

protocol-record: deps-py312
	mkdir -p build && $(PROTO_PYTHON) tests/protocol/record_vectors.py > build/openmv-vectors.txt
	cmp build/openmv-vectors.txt protocol/vectors/openmv-1.0.7.txt

TEST_TARGETS += protocol-test

# The virtual cam with Protocol V2 on UART4 (the fifth -serial), beside everything `make qemu`
# has: build/qemu-proto/firmware.elf. One Rust archive (protocol/cam) holds both engines.
PROTO_CAM_LIB := protocol/cam/target/$(RUST_ARM_TARGET)/release/libomv_cam.a
QEMU_PROTO_BUILD := $(abspath build/qemu-proto)
PROTO_SOURCES := $(wildcard protocol/src/*.rs protocol/cam/src/*.rs) protocol/Cargo.toml \
	protocol/cam/Cargo.toml $(ENGINE_SOURCES)

.PHONY: qemu-proto
$(PROTO_CAM_LIB): $(PROTO_SOURCES)
	cd protocol/cam && $(CARGO) build -j2 --locked --release --target $(RUST_ARM_TARGET)

qemu-proto: deps deps-rust $(PROTO_CAM_LIB)
	$(MAKE) -C ports/qemu -j2 BUILD=$(QEMU_PROTO_BUILD) MPY_DIR=$(MPY_DIR) WITH_RPC=1 \
	  WITH_ENGINE=1 RUST_LIB=$(abspath $(PROTO_CAM_LIB)) OMV_PROTOCOL_V2=1

# The official package against the virtual cam (tests/protocol/test_cam.py), and rpc over a
# channel both ways (tests/protocol/test_rpc_channel.py): the host package's abi3 wheel
# (make host) goes into the 3.12 venv too.
PROTO_HOST_STAMP := $(PROTO_VENV)/.host-installed
$(PROTO_HOST_STAMP): $(HOST_STAMP) $(PROTO_VENV)/.installed
	$(PROTO_VENV)/bin/pip install -q --force-reinstall --no-deps $(HOST_WHEEL_DIR)/omv_rpc-*-abi3-*.whl
	touch $@

.PHONY: protocol-cam-test
protocol-cam-test: qemu-proto host $(PROTO_HOST_STAMP)
	cd tests/protocol && $(PROTO_PYTHON) -m pytest -q -p no:cacheprovider .

TEST_TARGETS += protocol-cam-test

# Figures: version() calls/s, stream frames/s and MB/s, rpc calls/s over the channel (the
# package's Camera and our host role) and over the plain UART3, instructions per frame and
# per call under -icount shift=0.
.PHONY: protocol-bench protocol-demo
protocol-bench: qemu-proto host $(PROTO_HOST_STAMP)
	$(PROTO_PYTHON) tests/protocol/bench_protocol.py

# make demo's Protocol V2 part: the official package drives the cam, then rpc over its link.
protocol-demo: qemu-proto host $(PROTO_HOST_STAMP)
	$(PROTO_PYTHON) tests/protocol/demo_protocol.py
demo: protocol-demo

BENCH_TARGETS += protocol-bench

# The host package links the host role (host/src/omvp.rs): rebuild it when the crate changes.
$(HOST_STAMP): $(wildcard protocol/src/*.rs) protocol/Cargo.toml
