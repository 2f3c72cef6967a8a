# recovery: issue 11's measurements through a real relay process (tests/relay.py).
#   make recovery-test  tests/unix/test_recovery_relay.py: each of the 8 packets of a call
#                       dropped, corrupted, truncated or delayed once, over UDP, TCP and pty,
#                       ours/ours, reference-timing master/our slave, our master/reference-
#                       timing slave (about 1-1.5 minutes)

.PHONY: recovery-test

recovery-test: unix deps-py
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/unix/test_recovery_relay.py

TEST_TARGETS += recovery-test
