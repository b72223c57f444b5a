//! Writing Desktop Entry files (`.desktop`, `.directory`) with the spec's escaping rules.
//!
//! We write the text ourselves rather than through `freedesktop-desktop-entry`, whose writer sorts
//! groups and does not escape values. Keys come out in a fixed order, every value is escaped for
//! its type, and `Exec` arguments are quoted so no registry-supplied name can add an argument or
//! run a shell command.
//! See: <https://specifications.freedesktop.org/desktop-entry-spec/latest/>

use std::fmt::Write as _;

/// The spec version we write. Debian 12's `desktop-file-validate` (0.26) rejects 1.5, and we use
/// no key newer than 1.4.
pub const SPEC_VERSION: &str = "1.4";

/// Escapes a `string`/`localestring` value: backslash, newline, tab and carriage return, plus
/// leading and trailing spaces, which readers would otherwise trim.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            ' ' if i == 0 || i == last => out.push_str("\\s"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes one element of a `;`-separated list value.
pub fn escape_list_item(value: &str) -> String {
    escape_value(value).replace(';', "\\;")
}

/// Quotes one `Exec` argument: always inside double quotes, with `"`, `` ` ``, `$` and `\`
/// backslash-escaped, and `%` doubled so it is never read as a field code. The result still needs
/// [`escape_value`], which the entry writer applies to the whole `Exec` line.
pub fn quote_exec_arg(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('"');
    for c in arg.chars() {
        match c {
            '"' | '`' | '$' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '%' => out.push_str("%%"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Builds an `Exec` value (before value escaping) from a program and its arguments.
pub fn exec_line<'a>(program: &str, args: impl IntoIterator<Item = &'a str>) -> String {
    let mut line = quote_exec_arg(program);
    for arg in args {
        line.push(' ');
        line.push_str(&quote_exec_arg(arg));
    }
    line
}

/// A desktop entry under construction: the `[Desktop Entry]` group with keys in insertion order.
#[derive(Debug, Default)]
pub struct Entry {
    keys: Vec<(&'static str, String)>,
}

impl Entry {
    pub fn application() -> Entry {
        Entry::with_type("Application")
    }

    pub fn directory() -> Entry {
        Entry::with_type("Directory")
    }

    fn with_type(kind: &str) -> Entry {
        let mut entry = Entry::default();
        entry.raw("Type", kind.to_owned());
        entry.raw("Version", SPEC_VERSION.to_owned());
        entry
    }

    /// Adds a `string`, `localestring` or `iconstring` key.
    pub fn string(&mut self, key: &'static str, value: &str) -> &mut Entry {
        self.raw(key, escape_value(value))
    }

    /// Adds a list key; each item is escaped and terminated by `;`.
    pub fn list(&mut self, key: &'static str, items: &[&str]) -> &mut Entry {
        let mut value = String::new();
        for item in items {
            value.push_str(&escape_list_item(item));
            value.push(';');
        }
        self.raw(key, value)
    }

    pub fn boolean(&mut self, key: &'static str, value: bool) -> &mut Entry {
        self.raw(key, value.to_string())
    }

    /// Adds `Exec` from a program path and arguments, quoted and escaped.
    pub fn exec<'a>(
        &mut self,
        program: &str,
        args: impl IntoIterator<Item = &'a str>,
    ) -> &mut Entry {
        self.raw("Exec", escape_value(&exec_line(program, args)))
    }

    fn raw(&mut self, key: &'static str, value: String) -> &mut Entry {
        debug_assert!(
            key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "invalid desktop entry key {key}"
        );
        self.keys.push((key, value));
        self
    }

    pub fn render(&self) -> String {
        let mut out = String::from("[Desktop Entry]\n");
        for (key, value) in &self.keys {
            // Writing into a String cannot fail.
            let _ = writeln!(out, "{key}={value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_values() {
        assert_eq!(escape_value(r"a\b"), r"a\\b");
        assert_eq!(escape_value(" padded "), r"\spadded\s");
        assert_eq!(escape_value("mid dle"), "mid dle");
        assert_eq!(escape_list_item("a;b"), r"a\;b");
    }

    #[test]
    fn quotes_exec_arguments() {
        assert_eq!(quote_exec_arg("plain"), r#""plain""#);
        assert_eq!(
            quote_exec_arg(r#"$(rm) "x" `y` \z 100%"#),
            r#""\$(rm) \"x\" \`y\` \\z 100%%""#
        );
        // The spec's example: a literal backslash inside a quoted argument is four in the file.
        assert_eq!(escape_value(&quote_exec_arg(r"\")), r#""\\\\""#);
    }

    #[test]
    fn renders_in_order() {
        let mut entry = Entry::application();
        entry
            .string("Name", "terminal:1.0")
            .exec("/usr/bin/arcade", ["launch", "h/p/terminal:1.0"])
            .list("Categories", &["X-A", "X-B"])
            .boolean("StartupNotify", true);
        assert_eq!(
            entry.render(),
            "[Desktop Entry]\nType=Application\nVersion=1.4\nName=terminal:1.0\n\
             Exec=\"/usr/bin/arcade\" \"launch\" \"h/p/terminal:1.0\"\n\
             Categories=X-A;X-B;\nStartupNotify=true\n"
        );
    }
}
