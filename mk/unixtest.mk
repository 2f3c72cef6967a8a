# unixtest: the unix-port test suite and benchmark of `rpc`/`mutex` (issue 3), with the
# independent pure-Python peer bench/ref_rpc.py (also the issue-4 baseline).
#   make unix-test   -> tests/unix/ (our module against itself and bench/ref_rpc.py in both
#                       roles, over UDP/TCP loopback, TCP and pty streams, Python transports;
#                       hostile peers; mutex; vectors byte-exact). About 2 minutes on 2 cores.
#   make unix-bench  -> bench/unix_bench.py: calls/s, ratios to the raw link, heap per call.

.PHONY: unix-test unix-bench

UNIX_TESTS := $(filter-out tests/unix/test_smoke_glue.py tests/unix/test_recovery_relay.py,$(wildcard tests/unix/test_*.py))

unix-test: unix deps-py
	$(VENV)/bin/pytest -q -p no:cacheprovider $(UNIX_TESTS)

unix-bench: unix deps-py
	$(PYTHON) bench/unix_bench.py 2

TEST_TARGETS += unix-test
BENCH_TARGETS += unix-bench
