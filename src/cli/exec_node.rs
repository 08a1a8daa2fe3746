use std::path::PathBuf;
use std::process::ExitCode;

use crate::hash::Hash;
use crate::kind::Catalog;
use crate::store::Store;

#[derive(clap::Args)]
pub struct Args {
    /// A job the scheduler wrote into the cache (`cache/jobs/`), by id: what Slurm jobs run.
    #[arg(required_unless_present = "job", conflicts_with = "job")]
    id: Option<String>,
    /// The cache holding the job (with an id).
    #[arg(long, requires = "id")]
    cache: Option<PathBuf>,
    /// A kind job file written by the local scheduler.
    #[arg(long)]
    job: Option<PathBuf>,
}

pub fn run(args: Args, catalog: &Catalog) -> ExitCode {
    if let Some(job) = &args.job {
        return ExitCode::from(crate::exec::job::exec_kind_job(catalog, job) as u8);
    }
    let id = args.id.unwrap_or_default();
    let Some(id) = Hash::from_hex(&id) else {
        eprintln!("cegraph exec-node: `{id}` is not a job id (64 hex digits)");
        return ExitCode::from(2);
    };
    // A Slurm job: SIGTERM (scancel, time limit, pre-emption) stops the node's command group
    // and the job ends without a result, leaving the verdict to Slurm's state (the handler is
    // installed first thing in `cli::main`).
    let cache = args.cache.unwrap_or_else(|| PathBuf::from("cache"));
    let store = match Store::open(&cache) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cegraph exec-node: {e}");
            return ExitCode::from(2);
        }
    };
    let exe = match super::kind_runner() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("cegraph exec-node: {e}");
            return ExitCode::from(2);
        }
    };
    ExitCode::from(crate::exec::handoff::execute(&store, &id, &exe) as u8)
}
