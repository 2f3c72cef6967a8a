# fuzz: the engine fuzzed over its C ABI (fuzz/, issue 13).
#   make fuzz-smoke   the committed corpus (fuzz/corpus, from tests/vectors) and the crash
#                     regressions (fuzz/regressions), then 200,000 seeded mutations per target,
#                     through every target's invariant checks (stable Rust, no libFuzzer)
#   make fuzz         each libFuzzer target (decode, master, slave, stream_reader,
#                     stream_writer) for FUZZ_SECONDS seconds (default 60 each), one at a time;
#                     prints inputs tried, coverage, crashes, hangs. Built on stable Rust with
#                     LLVM's sancov pass (libfuzzer-sys bundles libFuzzer, built with g++).
#                     Then FUZZ_MUTATIONS (default 10^6) seeded mutations per target of the
#                     corpus libFuzzer grew, through the uninstrumented runner.
#   make fuzz-corpus  rewrite fuzz/corpus from tests/vectors/rpc-wire-vectors.json

FUZZ_TARGETS := decode master slave stream_reader stream_writer
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_RUNS ?= 200000
FUZZ_MUTATIONS ?= 1000000
FUZZ_SEED ?= 2
FUZZ_HOST := $(shell rustc -vV | sed -n 's/^host: //p')
FUZZ_RUSTFLAGS := -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing
FUZZ_SMOKE_BIN := target/fuzz-smoke/release/smoke

.PHONY: fuzz fuzz-build fuzz-smoke fuzz-corpus

fuzz-smoke:
	cd fuzz && $(CARGO) build -j2 --locked --release --bin smoke --target-dir ../target/fuzz-smoke
	$(FUZZ_SMOKE_BIN) --runs $(FUZZ_SMOKE_RUNS) --seed 1 fuzz/corpus fuzz/regressions

# --target: RUSTFLAGS then reach only the fuzzed code, not the build scripts.
fuzz-build:
	cd fuzz && RUSTFLAGS="$(FUZZ_RUSTFLAGS)" $(CARGO) build -j2 --locked --release \
	  --features libfuzzer --target $(FUZZ_HOST) --target-dir ../target/fuzz \
	  $(addprefix --bin ,$(FUZZ_TARGETS))

# libFuzzer grows build/fuzz/corpus; then the uninstrumented runner (5-10x faster per
# input) takes FUZZ_MUTATIONS seeded mutations of that corpus through every target's checks.
fuzz: fuzz-build fuzz-smoke
	python3 fuzz/run_fuzz.py --seconds $(FUZZ_SECONDS) --bin-dir target/fuzz/$(FUZZ_HOST)/release \
	  $(FUZZ_TARGETS)
	$(FUZZ_SMOKE_BIN) --runs $(FUZZ_MUTATIONS) --seed $(FUZZ_SEED) build/fuzz/corpus fuzz/regressions

fuzz-corpus:
	python3 fuzz/make_corpus.py

TEST_TARGETS += fuzz-smoke
