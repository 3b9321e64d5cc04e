//! `-v`: what the command does besides the output (tokens, retries, splits), on stderr.

/// Whether to tell; cheap to clone into every task.
#[derive(Debug, Clone, Copy, Default)]
pub struct Log {
    /// Print each event.
    pub verbose: bool,
}

impl Log {
    /// One line `hapi: ...` on stderr when verbose.
    pub fn say(&self, what: std::fmt::Arguments<'_>) {
        if self.verbose {
            eprintln!("hapi: {what}");
        }
    }
}
