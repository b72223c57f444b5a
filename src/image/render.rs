//! `image check`'s report for a terminal: what failed first, each finding on a few lines
//! wrapped to fit 100 columns, and a count at the end.

use std::fmt::Write as _;

use super::{Report, Status};

/// The widest line the table makes.
const WIDTH: usize = 100;
/// Where a finding's details start, under its requirement.
const INDENT: &str = "        ";

/// The report as text: a header, then per finding its result and requirement, what was seen
/// and how to fix it, each wrapped under the requirement.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} with {}", report.image, report.engine);
    let _ = writeln!(out, "RESULT  REQUIREMENT, SEEN, HOW TO FIX");
    for finding in &report.findings {
        let first = format!("{:<8}{}", finding.status.to_string(), finding.requirement);
        push_wrapped(&mut out, &first, "");
        push_wrapped(&mut out, &format!("{INDENT}seen: {}", finding.seen), INDENT);
        if !finding.fix.is_empty() {
            push_wrapped(&mut out, &format!("{INDENT}fix:  {}", finding.fix), INDENT);
        }
    }
    if let Some(entry) = &report.entry {
        let _ = writeln!(out, "The menu entry would read:");
        for line in entry.lines() {
            push_wrapped(&mut out, &format!("  {line}"), "    ");
        }
    }
    let _ = writeln!(
        out,
        "{} passed, {}, {} failed",
        report.count(Status::Pass),
        crate::text::count(report.count(Status::Warn), "warning", "warnings"),
        report.count(Status::Fail)
    );
    out
}

fn push_wrapped(out: &mut String, text: &str, indent: &str) {
    let options = textwrap::Options::new(WIDTH).subsequent_indent(indent);
    for line in textwrap::wrap(text, options) {
        let _ = writeln!(out, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Finding;

    #[test]
    fn every_line_fits_a_100_column_terminal() {
        let report = Report {
            image: "images.canfar.net/skaha/ds9:8.4".to_owned(),
            engine: "podman".to_owned(),
            findings: vec![Finding {
                id: "startup",
                requirement: "/skaha/startup.sh, if present, runs the command it is given",
                status: Status::Warn,
                seen: "startup.sh ignores the command it is given and runs its own app: the \
                       menu's command and files opened from the desktop cannot reach it"
                    .repeat(2),
                fix: "end startup.sh with exec \"$@\"".to_owned(),
            }],
            entry: None,
        };
        let text = render(&report);
        for line in text.lines() {
            assert!(line.chars().count() <= WIDTH, "{line:?}");
        }
        assert!(text.contains("warn    /skaha/startup.sh"), "{text}");
        assert!(text.ends_with("0 passed, 1 warning, 0 failed\n"), "{text}");
    }
}
