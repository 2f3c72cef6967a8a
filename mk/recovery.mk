# recovery: issue 11's measurements through a real relay process (tests/relay.py).
#   make recovery-test  tests/unix/test_recovery_relay.py: each of the 8 packets of a call
#                       dropped, corrupted, truncated or delayed once, over UDP, TCP and pty,
#                       ours/ours, reference-timing master/our slave, our master/reference-
#                       timing slave (about 1-1.5 minutes)
#   make lossy-bench    bench/lossy_bench.py: right/None/wrong and the mean time of a call that
#                       hit a loss at 1/2/5/10% loss per transport and pairing; calls/s against
#                       an Arduino-timing slave. LOSSY_ARGS="--long" adds 10,000 calls a rate.

.PHONY: recovery-test lossy-bench

recovery-test: unix deps-py
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/unix/test_recovery_relay.py

lossy-bench: unix host
	$(PYTHON) bench/lossy_bench.py $(LOSSY_ARGS)

TEST_TARGETS += recovery-test
BENCH_TARGETS += lossy-bench
