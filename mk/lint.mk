# lint: the engine crate (src/, tests/, benches/) is rustfmt-clean (rustfmt.toml) and has no
# clippy warning, for the host build with its tests and for the firmware target.

.PHONY: lint

lint: deps-rust
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy -j2 --locked --all-targets -- -D warnings
	$(CARGO) clippy -j2 --locked --lib --target $(RUST_ARM_TARGET) -- -D warnings

TEST_TARGETS += lint
