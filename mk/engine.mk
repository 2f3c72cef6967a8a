# engine: the Rust protocol engine (Cargo.toml, src/, tests/*.rs, benches/).
# Static libraries for the C side:
#   host:      target/release/libomv_rpc.a
#   Cortex-M7: target/$(RUST_ARM_TARGET)/release/libomv_rpc.a        (firmware, user C module)
#   Cortex-M7, position independent: target/pic/$(RUST_ARM_TARGET)/release/libomv_rpc.a
#              (ARM native .mpy: mpy_ld takes no MOVW/MOVT absolute relocations)

CARGO ?= cargo
ENGINE_SOURCES := Cargo.toml Cargo.lock $(shell find src -name "*.rs")
ENGINE_LIB_HOST := target/release/libomv_rpc.a
ENGINE_LIB_ARM := target/$(RUST_ARM_TARGET)/release/libomv_rpc.a
ENGINE_LIB_ARM_PIC := target/pic/$(RUST_ARM_TARGET)/release/libomv_rpc.a

.PHONY: engine-test engine-host engine-arm engine-arm-pic engine-bench

# Byte-exact vectors, property tests, the lossy simulated link, timing rules, C header ABI.
engine-test: deps-rust
	$(CARGO) test -j2 --locked

engine-host: $(ENGINE_LIB_HOST)
$(ENGINE_LIB_HOST): $(ENGINE_SOURCES)
	$(CARGO) build -j2 --locked --release

engine-arm: deps-rust $(ENGINE_LIB_ARM)
$(ENGINE_LIB_ARM): $(ENGINE_SOURCES)
	$(CARGO) build -j2 --locked --release --target $(RUST_ARM_TARGET)

engine-arm-pic: deps-rust $(ENGINE_LIB_ARM_PIC)
$(ENGINE_LIB_ARM_PIC): $(ENGINE_SOURCES)
	RUSTFLAGS="-C relocation-model=pic" $(CARGO) build -j2 --locked --release \
	  --target $(RUST_ARM_TARGET) --target-dir target/pic

# Prints CRC throughput, engine overhead per call (ns and instructions), thumbv7em code size.
engine-bench: deps-rust engine-arm
	$(CARGO) bench -j2 --locked --bench engine

TEST_TARGETS += engine-test
BENCH_TARGETS += engine-bench
