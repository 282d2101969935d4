//! `actwarden matrix --config C [--format markdown|json]` (SPEC §12).

use super::{emit, read, read_relative, CliError};
use actwarden::api::ApiError;
use actwarden::matrix::{matrix, to_markdown};
use actwarden::Policy;
use std::process::ExitCode;

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum MatrixFormat {
    Markdown,
    Json,
}

pub(crate) fn run(config: &str, format: MatrixFormat) -> Result<ExitCode, CliError> {
    let text = read(config)?;
    let policy = Policy::from_json_with_files(&text, &read_relative(config))
        .map_err(|e| CliError::Api(ApiError::Config(e)))?;
    let m = matrix(&policy);
    match format {
        MatrixFormat::Markdown => emit(to_markdown(&m).trim_end()),
        MatrixFormat::Json => emit(&serde_json::to_string_pretty(&m).map_err(CliError::Render)?),
    }
    Ok(ExitCode::SUCCESS)
}
