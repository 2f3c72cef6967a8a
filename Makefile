# omv-rpc: the two commands a user needs are `make demo` and `make test`.
# Each area keeps its own rules in mk/<area>.mk; this file only ties them together.

.DEFAULT_GOAL := help
SHELL := /bin/bash

include mk/deps.mk
include $(sort $(filter-out mk/deps.mk,$(wildcard mk/*.mk)))

.PHONY: help test bench demo clean distclean

help:
	@echo "make demo   build and boot the virtual cam and run the demo controller against it"
	@echo "make test   run every test (installs what it needs first)"
	@echo "make bench  print the benchmark figures"
	@echo "make deps   install the toolchains and pinned packages only"
	@echo "make clean  remove every build output (distclean: also downloads and .venv)"

# Each mk/<area>.mk adds its own targets to TEST_TARGETS and BENCH_TARGETS.
test: deps $(TEST_TARGETS)
	@echo "make test: all test groups passed ($(TEST_TARGETS))"

bench: deps $(BENCH_TARGETS)

# clean: every build output (everything under build/ but the downloaded sdist and the
# MicroPython core unpacked from it, whose mpy-cross build goes too; cargo's target dirs).
# distclean: also the downloads and the venvs (.venv, .venv312), as on a fresh clone.
clean:
	@if [ -d build ]; then find build -mindepth 1 -maxdepth 1 ! -name dl ! -name micropython -exec rm -rf {} +; fi
	rm -rf build/micropython/mpy-cross/build target host/target protocol/target protocol/cam/target fuzz/artifacts
	find . -name __pycache__ -prune -exec rm -rf {} + -o -name .pytest_cache -prune -exec rm -rf {} +

distclean: clean
	rm -rf build .venv .venv312
