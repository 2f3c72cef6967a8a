# omv-rpc: the two commands a user needs are `make demo` and `make test`.
# Each area keeps its own rules in mk/<area>.mk; this file only ties them together.

.DEFAULT_GOAL := help
SHELL := /bin/bash

include mk/deps.mk
include $(sort $(filter-out mk/deps.mk,$(wildcard mk/*.mk)))

.PHONY: help test bench demo clean

help:
	@echo "make demo   build and boot the virtual cam and run the demo controller against it"
	@echo "make test   run every test (installs what it needs first)"
	@echo "make bench  print the benchmark figures"
	@echo "make deps   install the toolchains and pinned packages only"

# Each mk/<area>.mk adds its own targets to TEST_TARGETS and BENCH_TARGETS.
test: deps $(TEST_TARGETS)
	@echo "make test: all test groups passed ($(TEST_TARGETS))"

bench: deps $(BENCH_TARGETS)

clean:
	rm -rf build/unix build/qemu build/natmod target
