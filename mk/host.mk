# host: the computer-side package `rpc` (host/): the engine as an abi3 CPython extension
# (PyO3, built by maturin), the documented desktop classes, `python -m rpc`, examples.
#
#   make host         build the abi3 wheel (build/host/wheels/) and install it into .venv/
#   make host-test    Rust unit tests of the link estimator, then host/tests (pytest)
#   make host-bench   calls/s and MB/s against the cam side over loopback, raw link, +16 ms

HOST_WHEEL_DIR := build/host/wheels
HOST_SOURCES := host/Cargo.toml host/Cargo.lock host/pyproject.toml $(wildcard host/src/*.rs) \
  $(wildcard host/python/rpc/*.py) $(ENGINE_SOURCES)
HOST_STAMP := $(VENV)/.host-installed

.PHONY: host host-deps host-test host-bench

$(VENV)/.host-deps: host/requirements.txt $(VENV)/.installed
	$(VENV)/bin/pip install -q -r host/requirements.txt
	touch $@
host-deps: deps-py $(VENV)/.host-deps

$(HOST_STAMP): $(HOST_SOURCES) $(VENV)/.host-deps
	rm -rf $(HOST_WHEEL_DIR)
	cd host && PYO3_PYTHON=$(PYTHON) CARGO_BUILD_JOBS=2 $(abspath $(VENV))/bin/maturin build \
	  --release --locked -q -o $(abspath $(HOST_WHEEL_DIR))
	$(VENV)/bin/pip install -q --force-reinstall --no-deps $(HOST_WHEEL_DIR)/omv_rpc-*-abi3-*.whl
	touch $@
host: host-deps $(HOST_STAMP)

# The cam side in the unix port (build/unix) is built by its own fragment's `unix` target.
HOST_TEST_NEEDS := host $(if $(wildcard mk/unix.mk),unix) $(if $(wildcard mk/qemu.mk),qemu)

host-test: $(HOST_TEST_NEEDS)
	cd host && PYO3_PYTHON=$(PYTHON) cargo test -j2 --locked --lib -q
	cd host && MICROPYTHON=$(MICROPYTHON) $(PYTHON) -m pytest -q -p no:cacheprovider tests

host-bench: $(HOST_TEST_NEEDS)
	MICROPYTHON=$(MICROPYTHON) $(PYTHON) host/bench/bench_host.py

TEST_TARGETS += host-test
BENCH_TARGETS += host-bench
