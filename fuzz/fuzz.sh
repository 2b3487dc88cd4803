#!/usr/bin/env bash
# Build and run one fuzz target on the stable toolchain: libFuzzer (from the libfuzzer-sys
# crate) with LLVM's SanitizerCoverage switched on through stable `-C` flags.
#
#   fuzz/fuzz.sh build                  build both targets
#   fuzz/fuzz.sh run TARGET [SECONDS]   fuzz TARGET (decode_image | multipart_form); default 600 s
#   fuzz/fuzz.sh repro TARGET FILE...   run TARGET once on each FILE (a crash or a corpus entry)
#   fuzz/fuzz.sh cmin TARGET            shrink TARGET's corpus to the entries that add coverage
#
# Extra libFuzzer flags go in $FUZZ_ARGS. Runs under `nice -n 19`, one process at a time.
set -euo pipefail
cd "$(dirname "$0")"

TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
# --target keeps these flags off build scripts and proc macros, which are not linked with
# libFuzzer. The sancov flags are the ones cargo-fuzz passes; none needs nightly.
export RUSTFLAGS="${RUSTFLAGS:-} --cfg fuzzing -Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 -Cforce-frame-pointers=yes"
BIN=target/$TRIPLE/release

build() {
  nice -n 19 cargo build --release --target "$TRIPLE" --bins
}

dict_of() {
  case "$1" in
    decode_image) echo dict/image.dict ;;
    multipart_form) echo dict/multipart.dict ;;
    *) echo "unknown target $1" >&2; exit 2 ;;
  esac
}

case "${1:-}" in
  build) build ;;
  run)
    target=${2:?target}; secs=${3:-600}
    dict=$(dict_of "$target")
    build
    [ -d "corpus/$target" ] || python3 make_seeds.py
    mkdir -p "artifacts/$target" logs
    log=logs/$target-$(date -u +%Y%m%dT%H%M%SZ).log
    echo "log: fuzz/$log"
    # -max_len: a photo header and a few parts fit; the multipart limit (4 KiB) can be crossed.
    nice -n 19 "$BIN/$target" "corpus/$target" \
      -dict="$dict" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -max_len=8192 -print_final_stats=1 -artifact_prefix="artifacts/$target/" \
      ${FUZZ_ARGS:-} 2>&1 | tee "$log"
    ;;
  repro)
    target=${2:?target}; shift 2
    build
    "$BIN/$target" -runs=1 "$@"
    ;;
  cmin)
    target=${2:?target}
    build
    mkdir -p "corpus/$target.min"
    nice -n 19 "$BIN/$target" -merge=1 "corpus/$target.min" "corpus/$target"
    ;;
  *) sed -n '2,10p' "$0"; exit 2 ;;
esac
