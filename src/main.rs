//! The `leadscore` binary: parse the command line, run it, turn the outcome into an exit status
//! (0 success, 1 bad input or configuration, 2 usage).

use clap::Parser;
use leadscore::Error;
use leadscore::cli::{Cli, run};

/// Stack size of the runtime's worker threads.
const WORKER_STACK_BYTES: usize = 32 << 20;

fn main() {
    let cli = Cli::parse();
    // Deep query plans (the scoring queries, serialized for a Ballista cluster) recurse deeper
    // than the default 2 MiB worker stacks allow in unoptimized builds.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(WORKER_STACK_BYTES)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("leadscore: cannot start: {e}");
            std::process::exit(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("leadscore: {e}");
            std::process::exit(match e {
                Error::Usage(_) => 2,
                _ => 1,
            });
        }
    }
}
