//! `faults`: runs the fault simulation and prints its report; exits 1 when an invariant fails or
//! a fault kind was injected fewer than `--min-each` times, 2 on bad arguments.
//!
//! Usage: `faults [--seed N] [--pushes N] [--sends N] [--users N] [--min-each N]`
//! (`make faults SEED=… PUSHES=… SENDS=…`).

use std::process::ExitCode;

use faults::{Config, run};

fn main() -> ExitCode {
    let mut config = Config::new(1, 100_000, 10_000);
    let mut min_each = 0;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), value) {
            ("--seed", Some(v)) => config.seed = v,
            ("--pushes", Some(v)) => config.pushes = v,
            ("--sends", Some(v)) => config.sends = v,
            ("--users", Some(v)) => config.users_per_app = v as usize,
            ("--min-each", Some(v)) => min_each = v,
            _ => {
                eprintln!(
                    "usage: faults [--seed N] [--pushes N] [--sends N] [--users N] [--min-each N]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("faults: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match runtime.block_on(run(&config)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("faults: could not set up the run: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{report}");
    let thin = report.under_injected(min_each);
    if !thin.is_empty() {
        let names: Vec<_> = thin.iter().map(|k| k.name()).collect();
        println!("injected fewer than {min_each} times: {}", names.join(", "));
    }
    if report.passed() && thin.is_empty() {
        println!(
            "faults: passed (replay with --seed {} --pushes {} --sends {} --users {})",
            config.seed, config.pushes, config.sends, config.users_per_app
        );
        ExitCode::SUCCESS
    } else {
        println!(
            "faults: FAILED — replay with --seed {} --pushes {} --sends {} --users {}",
            config.seed, config.pushes, config.sends, config.users_per_app
        );
        ExitCode::FAILURE
    }
}
