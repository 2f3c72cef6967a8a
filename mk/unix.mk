# unix: the native modules (.mpy) of `rpc` and `mutex` for the real unix port (x64) and for
# Cortex-M4F/M7 boards (armv7emsp), and the glue's smoke test.
#   make unix        -> build/unix/rpc.mpy, build/unix/mutex.mpy
#                       (MICROPYPATH=build/unix .venv/bin/micropython script.py can import both)
#   make natmod-arm  -> build/natmod-arm/rpc.mpy, build/natmod-arm/mutex.mpy
#   make unix-smoke  -> both builds, then tests/unix/test_smoke_glue.py

UNIX_DIR := build/unix
NATMOD_ARM_DIR := build/natmod-arm

.PHONY: unix natmod-arm unix-smoke

# One recursive make per ARCH; it decides what is out of date.
unix: deps-mpy deps-py
	$(MAKE) -C mp_glue --no-print-directory natmod ARCH=x64 OUT=$(abspath $(UNIX_DIR)) \
	    BUILD=$(abspath build/natmod-x64) MPY_DIR=$(MPY_DIR) PYTHON=$(PYTHON)

natmod-arm: deps-apt deps-rust deps-mpy deps-py
	$(MAKE) -C mp_glue --no-print-directory natmod ARCH=armv7emsp OUT=$(abspath $(NATMOD_ARM_DIR)) \
	    BUILD=$(abspath build/natmod-armv7emsp) MPY_DIR=$(MPY_DIR) PYTHON=$(PYTHON)

# natmod-arm too: that mpy_ld.py still links the Cortex-M module is checked on every run.
unix-smoke: unix natmod-arm
	$(VENV)/bin/pytest -q tests/unix/test_smoke_glue.py

TEST_TARGETS += unix-smoke
