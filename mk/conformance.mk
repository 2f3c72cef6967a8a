# conformance: the two drivers of the engine (the MicroPython module in the unix port, the host
# package) against the facts the crate exports in include/omv_rpc.h, and against each other.
#   make conformance-test   -> tests/conformance/ (a few seconds)

.PHONY: conformance-test

conformance-test: unix host
	MICROPYTHON=$(MICROPYTHON) $(VENV)/bin/pytest -q -p no:cacheprovider tests/conformance

TEST_TARGETS += conformance-test
