//! The fuzz targets without libFuzzer (stable Rust, no instrumentation): every file of the
//! committed corpus and of the crash regressions, then deterministic mutations of them
//! (a seeded xorshift), through each target's invariant checks.
//!
//!     smoke [--runs N] [--seed S] [--target NAME] DIR...
//!
//! DIR holds one folder per target (fuzz/corpus, fuzz/regressions). A check that fails panics;
//! the panic hook first writes the input to fuzz/artifacts/<target>/crash-<n> and names it.
//! Prints the inputs run per target.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 5] = [
    ("decode", omv_rpc_fuzz::decode::run),
    ("master", omv_rpc_fuzz::master::run),
    ("slave", omv_rpc_fuzz::slave::run),
    ("stream_reader", omv_rpc_fuzz::stream::run_reader),
    ("stream_writer", omv_rpc_fuzz::stream::run_writer),
];

thread_local! {
    static CURRENT: RefCell<(String, Vec<u8>)> = const { RefCell::new((String::new(), Vec::new())) };
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: [u8; 12] = [0, 1, 2, 3, 4, 0x7F, 0x80, 0xFF, 0x09, 0x12, 0xBA, 0x1D];

fn mutate(rng: &mut XorShift, input: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..1 + rng.below(4) {
        match rng.below(7) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = rng.next() as u8;
            }
            3 => {
                let i = rng.below(input.len() + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                input.splice(i..i, bytes);
            }
            4 if !input.is_empty() => {
                let i = rng.below(input.len());
                let n = 1 + rng.below(8).min(input.len() - i - 1);
                input.drain(i..(i + n).min(input.len()));
            }
            5 if !other.is_empty() => {
                // Splice: our head, the other input's tail.
                let i = rng.below(input.len() + 1);
                let j = rng.below(other.len());
                input.truncate(i);
                input.extend_from_slice(&other[j..]);
            }
            _ => {
                let n = rng.below(input.len() + 1);
                input.truncate(n);
            }
        }
    }
    input.truncate(4096);
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn run_one(name: &str, f: fn(&[u8]), input: &[u8]) {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        c.0.clear();
        c.0.push_str(name);
        c.1.clear();
        c.1.extend_from_slice(input);
    });
    f(input);
}

fn main() {
    let mut runs: u64 = 20_000;
    let mut seed: u64 = 1;
    let mut only: Option<String> = None;
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--seed" => seed = args.next().and_then(|v| v.parse().ok()).expect("--seed S"),
            "--target" => only = args.next(),
            d => dirs.push(PathBuf::from(d)),
        }
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        CURRENT.with(|c| {
            let c = c.borrow();
            let dir = PathBuf::from("fuzz/artifacts").join(&c.0);
            let _ = std::fs::create_dir_all(&dir);
            let path = dir.join(format!("crash-{:016x}", fnv(&c.1)));
            let _ = std::fs::write(&path, &c.1);
            eprintln!("smoke: {} failed on the input saved as {}", c.0, path.display());
        });
        default_hook(info);
    }));
    for (name, f) in TARGETS {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let corpus: Vec<Vec<u8>> = dirs
            .iter()
            .flat_map(|d| files(&d.join(name)))
            .map(|p| std::fs::read(p).expect("corpus file"))
            .collect();
        assert!(!corpus.is_empty(), "no corpus for {name} in {dirs:?}");
        for input in &corpus {
            run_one(name, f, input);
        }
        let started = std::time::Instant::now();
        let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        for i in 1..=runs {
            let mut input = corpus[rng.below(corpus.len())].clone();
            let other = &corpus[rng.below(corpus.len())];
            mutate(&mut rng, &mut input, other);
            run_one(name, f, &input);
            if i % 1_000_000 == 0 {
                // Progress of a long run (a run stopped early still says how far it got).
                println!("smoke {name}: {i} mutations, {:.0} s, 0 failures", started.elapsed().as_secs_f64());
            }
        }
        let reached: Vec<String> = omv_rpc_fuzz::REACHED
            .iter()
            .zip(omv_rpc_fuzz::REACHED_NAMES)
            .map(|(n, what)| (n.swap(0, std::sync::atomic::Ordering::Relaxed), what))
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{what} {n}"))
            .collect();
        println!(
            "smoke {name}: {} corpus inputs + {runs} mutations (seed {seed}) in {:.1} s: 0 failures; reached: {}",
            corpus.len(),
            started.elapsed().as_secs_f64(),
            reached.join(", ")
        );
    }
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3))
}
