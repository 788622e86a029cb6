//! Command-line flags shared by the examples (no parser dependency for `--name value`).

/// The value after `--name`, if given.
pub(crate) fn arg(name: &str) -> Option<String> {
    let mut args = std::env::args();
    while let Some(a) = args.next() {
        if a == name {
            return args.next();
        }
    }
    None
}

/// Whether the bare flag `--name` was given.
#[allow(dead_code)] // not every example has flags
pub(crate) fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}
