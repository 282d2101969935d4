//! `actwarden test --config C FILE… [--junit OUT] [--now T]` (SPEC §12): runs policy test
//! files. Prints one line per failing case, then `N passed, M failed`; exit 0 when all
//! pass, 1 when one fails, 2 on input that cannot be used (naming the file, and the JSON
//! path or the case).

use super::{emit, now_or_clock, read, read_relative, CliError};
use actwarden::api::ApiError;
use actwarden::policy_test::{self, CaseReport, FileReport, LoadedFile};
use actwarden::{Policy, UnixTime};
use ring::rand::SystemRandom;
use std::path::Path;
use std::process::ExitCode;

pub(crate) struct TestArgs {
    pub config: String,
    pub files: Vec<String>,
    pub junit: Option<String>,
    pub now: Option<f64>,
}

pub(crate) fn run(args: TestArgs) -> Result<ExitCode, CliError> {
    let rng = SystemRandom::new();
    let text = read(&args.config)?;
    let policy = Policy::from_json_with_files(&text, &read_relative(&args.config))
        .map_err(|e| CliError::Api(ApiError::Config(e)))?;
    let now = now_or_clock(args.now)?;
    // Every file is loaded before any case runs: bad input is refused as a whole.
    let loaded = args
        .files
        .iter()
        .map(|file| load(file, &rng))
        .collect::<Result<Vec<_>, _>>()?;
    let mut results: Vec<Vec<CaseReport>> = Vec::with_capacity(loaded.len());
    for (file, tests) in args.files.iter().zip(&loaded) {
        results.push(run_file(&policy, file, tests, now, &rng)?);
    }
    let reports: Vec<FileReport<'_>> = args
        .files
        .iter()
        .zip(&results)
        .map(|(file, cases)| FileReport { file, cases })
        .collect();
    if let Some(out) = &args.junit {
        std::fs::write(out, policy_test::junit_xml(&reports)).map_err(|error| CliError::Junit {
            out: out.clone(),
            error,
        })?;
    }
    Ok(summarize(&reports))
}

fn load(file: &str, rng: &SystemRandom) -> Result<LoadedFile, CliError> {
    let text = read(file)?;
    policy_test::load(&text, &read_relative(file), rng).map_err(|error| CliError::TestFile {
        file: file.to_owned(),
        error: Box::new(error),
    })
}

fn run_file(
    policy: &Policy,
    file: &str,
    tests: &LoadedFile,
    now: UnixTime,
    rng: &SystemRandom,
) -> Result<Vec<CaseReport>, CliError> {
    (0..tests.cases.len())
        .map(|i| {
            policy_test::run_case(policy, tests, i, now, rng).map_err(|error| CliError::TestCase {
                file: file.to_owned(),
                error,
            })
        })
        .collect()
}

/// The failing cases, one line each, and the count line (always last).
fn summarize(reports: &[FileReport<'_>]) -> ExitCode {
    let (mut passed, mut failed) = (0usize, 0usize);
    for report in reports {
        for case in report.cases {
            if case.passed() {
                passed += 1;
                continue;
            }
            failed += 1;
            let diffs: Vec<String> = case.mismatches.iter().map(ToString::to_string).collect();
            emit(&format!(
                "FAIL {} › {}: {}",
                display(report.file),
                case.name,
                diffs.join("; ")
            ));
        }
    }
    emit(&format!("{passed} passed, {failed} failed"));
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn display(file: &str) -> String {
    Path::new(file).display().to_string()
}
