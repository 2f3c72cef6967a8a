# engine: the Rust protocol engine (Cargo.toml, src/, tests/*.rs, benches/).
# The Cortex-M7 static library for the virtual cam: target/$(RUST_ARM_TARGET)/release/libomv_rpc.a.
# (The unix port, the native .mpy files and the firmware build their own through mp_glue/rust.mk.)

CARGO ?= cargo
ENGINE_SOURCES := Cargo.toml Cargo.lock $(shell find src -name '*.rs')
ENGINE_LIB_ARM := target/$(RUST_ARM_TARGET)/release/libomv_rpc.a

.PHONY: engine-test engine-arm engine-bench

# Byte-exact vectors, property tests, the lossy simulated link, timing rules, C header ABI.
engine-test: deps-rust
	$(CARGO) test -j2 --locked

engine-arm: deps-rust $(ENGINE_LIB_ARM)
$(ENGINE_LIB_ARM): $(ENGINE_SOURCES)
	$(CARGO) build -j2 --locked --release --target $(RUST_ARM_TARGET)

# Prints CRC throughput, engine overhead per call (ns and instructions), thumbv7em code size.
engine-bench: deps-rust engine-arm
	$(CARGO) bench -j2 --locked --bench engine

TEST_TARGETS += engine-test
BENCH_TARGETS += engine-bench
