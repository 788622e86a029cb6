#!/usr/bin/env bash
# Cross-builds the sansock ESP32 firmware in release mode for the ESP32-C3 and the ESP32-C6,
# after checking that sansock-embassy builds on its own for riscv32imc (no portable-atomic
# backend chosen by the library). Builds tcp-baseline, ws-client, ew-client (the same client
# with embedded-websocket) and ws-server; prints their section sizes, and their flash image
# sizes (and the difference to tcp-baseline) when espflash is installed. Meant to be called
# from the project's .ci/run.
#
# Needs: rustup with the stable toolchain; network access to crates.io for the first build.
# Optional: llvm-size (Debian `llvm`), espflash (`cargo install espflash --locked`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

C3_TARGET=riscv32imc-unknown-none-elf
C6_TARGET=riscv32imac-unknown-none-elf

# rust-toolchain.toml here selects `stable`; make sure it has both bare-metal targets.
installed="$(rustup target list --installed)"
for target in "$C3_TARGET" "$C6_TARGET"; do
    if ! grep -qx "$target" <<<"$installed"; then
        echo "== rustup target add $target"
        rustup target add "$target"
    fi
done

echo "== sansock-embassy alone for $C3_TARGET"
cargo build --manifest-path "$root/Cargo.toml" -p sansock-embassy --target "$C3_TARGET"

echo "== firmware, ESP32-C3 ($C3_TARGET, release)"
cargo build --release
echo "== firmware, ESP32-C6 ($C6_TARGET, release)"
cargo build --release --no-default-features --features esp32c6 --target "$C6_TARGET"

BINS=(tcp-baseline ws-client ew-client ws-server)

report() { # chip target
    local base=""
    for bin in "${BINS[@]}"; do
        local elf="$here/target/$2/release/$bin"
        echo "== $1 $bin: $elf"
        if command -v llvm-size >/dev/null; then
            # Sections with an address: what is flashed (.text, .rodata*, .rwtext*, .data*,
            # .trap, .flash.appdesc) and RAM-only ones (.bss, .stack, ...). Debug sections
            # left out.
            llvm-size -A "$elf" | awk 'NR <= 2 || ($2 > 0 && $3 > 0)'
        fi
        if command -v espflash >/dev/null; then
            local img size
            img="$(mktemp)"
            espflash save-image --chip "$1" "$elf" "$img" 2>&1 | grep -E "rror" || true
            size="$(stat -c %s "$img")"
            rm -f "$img"
            if [[ -z "$base" ]]; then
                base="$size"
                echo "flash image: $size bytes"
            else
                echo "flash image: $size bytes ($((size - base)) more than tcp-baseline)"
            fi
        fi
    done
}
report esp32c3 "$C3_TARGET"
report esp32c6 "$C6_TARGET"
