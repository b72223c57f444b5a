//! Writing Desktop Entry files (`.desktop`, `.directory`) with the spec's escaping rules.
//!
//! We write the text ourselves rather than through `freedesktop-desktop-entry`, whose writer sorts
//! groups and does not escape values. Keys come out in a fixed order, every value is escaped for
//! its type, and an `Exec` argument holding any character the spec reserves is quoted, so no
//! registry-supplied name can add an argument or run a shell command. Arguments that need no
//! quotes get none: xdg-open's generic mode (xdg-utils 1.1, its fallback on desktops it does not
//! know) splits `Exec` at spaces and runs its first word as it stands, so it can open a file only
//! with an entry whose program and arguments are bare words.
//! See: <https://specifications.freedesktop.org/desktop-entry-spec/latest/>

/// The spec version we write. Debian 12's `desktop-file-validate` (0.26) rejects 1.5, and we use
/// no key newer than 1.4.
pub const SPEC_VERSION: &str = "1.4";

/// Escapes a `string`/`localestring` value: backslash, newline, tab and carriage return, plus
/// leading and trailing spaces, which readers would otherwise trim.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_escaped(&mut out, value);
    out
}

/// Appends [`escape_value`]'s result to `out`.
fn push_escaped(out: &mut String, value: &str) {
    let bytes = value.as_bytes();
    // Most values need no escape at all; they are copied as they are.
    if bytes.first() != Some(&b' ')
        && bytes.last() != Some(&b' ')
        && !bytes
            .iter()
            .any(|byte| matches!(byte, b'\\' | b'\n' | b'\t' | b'\r'))
    {
        out.push_str(value);
        return;
    }
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
}

/// Escapes one element of a `;`-separated list value.
pub fn escape_list_item(value: &str) -> String {
    escape_value(value).replace(';', "\\;")
}

/// Quotes one `Exec` argument when it needs quotes (see [`needs_quotes`]): inside double quotes,
/// with `"`, `` ` ``, `$` and `\` backslash-escaped, and `%` doubled so it is never read as a
/// field code. The result still needs [`escape_value`], which the entry writer applies to the
/// whole `Exec` line.
pub fn quote_exec_arg(arg: &str) -> String {
    if !needs_quotes(arg) {
        return arg.to_owned();
    }
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

/// The characters the spec reserves in an `Exec` argument, plus `%`, which arcade keeps inside
/// quotes (where readers agree on `%%`).
const RESERVED: &[char] = &[
    ' ', '"', '\'', '\\', '>', '<', '~', '|', '&', ';', '$', '*', '?', '#', '(', ')', '`', '%',
];

/// Whether an `Exec` argument must be quoted: it is empty, or holds a reserved or control
/// character.
fn needs_quotes(arg: &str) -> bool {
    arg.is_empty() || arg.chars().any(|c| c.is_control() || RESERVED.contains(&c))
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

/// A desktop entry under construction: the `[Desktop Entry]` group with keys in insertion order,
/// written straight into its text (a large menu makes tens of thousands of entries, and a string
/// per value would be as many allocations again).
#[derive(Debug)]
pub struct Entry {
    text: String,
}

impl Entry {
    pub fn application() -> Entry {
        Entry::with_type("Application")
    }

    pub fn directory() -> Entry {
        Entry::with_type("Directory")
    }

    fn with_type(kind: &str) -> Entry {
        // Room for a typical application entry, so the text is rarely moved while it grows.
        let mut entry = Entry {
            text: String::with_capacity(768),
        };
        entry.text.push_str("[Desktop Entry]\n");
        entry.raw("Type", kind);
        entry.raw("Version", SPEC_VERSION);
        entry
    }

    /// Adds a `string`, `localestring` or `iconstring` key.
    pub fn string(&mut self, key: &'static str, value: &str) -> &mut Entry {
        self.key(key);
        push_escaped(&mut self.text, value);
        self.text.push('\n');
        self
    }

    /// Adds a list key; each item is escaped and terminated by `;`.
    pub fn list(&mut self, key: &'static str, items: &[&str]) -> &mut Entry {
        self.key(key);
        for item in items {
            if item.contains(';') {
                self.text.push_str(&escape_list_item(item));
            } else {
                push_escaped(&mut self.text, item);
            }
            self.text.push(';');
        }
        self.text.push('\n');
        self
    }

    pub fn boolean(&mut self, key: &'static str, value: bool) -> &mut Entry {
        self.raw(key, if value { "true" } else { "false" })
    }

    /// Adds `Exec` from a program path and arguments, quoted and escaped.
    pub fn exec<'a>(
        &mut self,
        program: &str,
        args: impl IntoIterator<Item = &'a str>,
    ) -> &mut Entry {
        self.string("Exec", &exec_line(program, args))
    }

    /// Adds `Exec` as [`Entry::exec`] does, ending in the field code `%F`, where a launcher puts
    /// the files it opens with the entry, each an argument of its own (or nothing at all).
    pub fn exec_opening_files<'a>(
        &mut self,
        program: &str,
        args: impl IntoIterator<Item = &'a str>,
    ) -> &mut Entry {
        self.string("Exec", &format!("{} %F", exec_line(program, args)))
    }

    /// Adds a key whose value needs no escaping.
    fn raw(&mut self, key: &'static str, value: &str) -> &mut Entry {
        self.key(key);
        self.text.push_str(value);
        self.text.push('\n');
        self
    }

    /// Starts a line: the key and `=`.
    fn key(&mut self, key: &'static str) {
        debug_assert!(
            key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "invalid desktop entry key {key}"
        );
        self.text.push_str(key);
        self.text.push('=');
    }

    /// Adds a `[Desktop Action id]` group: its name and its command. Call after every key of
    /// the `[Desktop Entry]` group, which must come first.
    pub fn action<'a>(
        &mut self,
        id: &str,
        name: &str,
        program: &str,
        args: impl IntoIterator<Item = &'a str>,
    ) -> &mut Entry {
        debug_assert!(
            id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "invalid desktop action id {id}"
        );
        self.text.push_str("\n[Desktop Action ");
        self.text.push_str(id);
        self.text.push_str("]\n");
        self.string("Name", name);
        self.exec(program, args)
    }

    pub fn render(&self) -> String {
        self.text.clone()
    }

    /// The text, without copying it.
    pub fn into_text(self) -> String {
        self.text
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
        // Bare words stay bare, so xdg-open's generic mode can run them.
        assert_eq!(quote_exec_arg("plain"), "plain");
        assert_eq!(
            quote_exec_arg("images.canfar.net/skaha/ds9:8.4@sha256:ab"),
            "images.canfar.net/skaha/ds9:8.4@sha256:ab"
        );
        assert_eq!(quote_exec_arg(""), r#""""#);
        assert_eq!(quote_exec_arg("two words"), r#""two words""#);
        assert_eq!(quote_exec_arg("a;b"), r#""a;b""#);
        assert_eq!(quote_exec_arg("tab\there"), "\"tab\there\"");
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
             Exec=/usr/bin/arcade launch h/p/terminal:1.0\n\
             Categories=X-A;X-B;\nStartupNotify=true\n"
        );
    }

    #[test]
    fn an_entry_that_opens_files_ends_its_exec_in_the_field_code() {
        let mut entry = Entry::application();
        entry.exec_opening_files("/opt/my apps/arcade", ["launch", "h/p/ds9:8.4"]);
        let text = entry.render();
        assert!(
            text.ends_with("\nExec=\"/opt/my apps/arcade\" launch h/p/ds9:8.4 %F\n"),
            "{text}"
        );
    }
}
