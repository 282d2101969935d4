//! JUnit XML for CI systems: one `<testsuite>` per test file, one `<testcase>` per case,
//! a `<failure>` listing every mismatch.

use super::CaseReport;

/// The results of one test file.
pub struct FileReport<'a> {
    /// The file as named on the command line.
    pub file: &'a str,
    pub cases: &'a [CaseReport],
}

pub fn junit_xml(files: &[FileReport<'_>]) -> String {
    let (tests, failures) = files.iter().fold((0, 0), |(t, f), file| {
        (t + file.cases.len(), f + failed(file.cases))
    });
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"actwarden policy tests\" tests=\"{tests}\" failures=\"{failures}\">\n"
    ));
    for file in files {
        out.push_str(&suite(file));
    }
    out.push_str("</testsuites>\n");
    out
}

fn failed(cases: &[CaseReport]) -> usize {
    cases.iter().filter(|c| !c.passed()).count()
}

fn suite(file: &FileReport<'_>) -> String {
    let name = escape(file.file);
    let mut out = format!(
        "  <testsuite name=\"{name}\" tests=\"{}\" failures=\"{}\">\n",
        file.cases.len(),
        failed(file.cases)
    );
    for case in file.cases {
        let case_name = escape(&case.name);
        if case.passed() {
            out.push_str(&format!(
                "    <testcase classname=\"{name}\" name=\"{case_name}\"/>\n"
            ));
            continue;
        }
        let lines: Vec<String> = case.mismatches.iter().map(ToString::to_string).collect();
        let first = lines.first().map(String::as_str).unwrap_or_default();
        out.push_str(&format!(
            "    <testcase classname=\"{name}\" name=\"{case_name}\">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
            escape(first),
            escape(&lines.join("\n"))
        ));
    }
    out.push_str("  </testsuite>\n");
    out
}

/// Text for an XML attribute or element: markup escaped, characters XML 1.0 cannot
/// hold dropped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}
