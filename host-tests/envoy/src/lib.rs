//! Harness for the Envoy end-to-end tests (filled in by the e2e work).
