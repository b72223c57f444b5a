//! The platform's container contract, as files we mount into the app container.
//!
//! CANFAR runs a desktop-app by running `/skaha/init.sh` if the image has one, then
//! `/skaha/startup.sh <launcher>` if the image has one, else the launcher, which starts xterm
//! titled with the app's name; the image's own CMD and ENTRYPOINT are not used. The launcher is
//! passed as one path so image scripts that run an unquoted `exec $@` still work.
//! See: `shared/reference/canfar-platform.md` §3 ("In the app container").

use std::borrow::Cow;

/// Where the per-launch folder is mounted inside the container.
pub const MOUNT: &str = "/run/arcade";
/// The entry script, run by `/bin/sh` as the container's command.
pub const ENTRY: &str = "/run/arcade/entry.sh";
/// The launcher script holding the command, passed to `/skaha/startup.sh`.
pub const COMMAND: &str = "/run/arcade/command.sh";
/// The wildcard X cookie inside the container.
pub const XAUTHORITY: &str = "/run/arcade/Xauthority";
/// The app's home: a fresh, writable folder that is not part of the image.
pub const HOME: &str = "/home/arcade";

/// The entry script: the platform's sequence, with `xset -b` (no bell) when xset exists.
pub fn entry_script() -> String {
    format!(
        "#!/bin/sh\n\
         # Written by arcade: starts a desktop-app the way the CANFAR platform does.\n\
         if [ -e /skaha/init.sh ]; then\n  /skaha/init.sh\nfi\n\
         if command -v xset >/dev/null 2>&1; then\n  xset -b >/dev/null 2>&1\nfi\n\
         if [ -e /skaha/startup.sh ]; then\n  exec /skaha/startup.sh {COMMAND}\nfi\n\
         exec {COMMAND}\n"
    )
}

/// The default command: the platform's xterm, white on black, titled with the app, no bell.
pub fn default_command(title: &str) -> Vec<String> {
    [
        "xterm",
        "-fg",
        "white",
        "-bg",
        "black",
        "-title",
        title,
        "-xrm",
        "XTerm*bellIsUrgent: false",
        "-xrm",
        "XTerm*bellIsAudible: false",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// The launcher script that runs `command`, each argument single-quoted for `/bin/sh`.
pub fn command_script(command: &[String]) -> Result<String, String> {
    let mut line = String::from("exec");
    for arg in command {
        let quoted: Cow<str> = shlex::try_quote(arg)
            .map_err(|_| format!("the command argument {arg:?} contains a NUL byte"))?;
        line.push(' ');
        line.push_str(&quoted);
    }
    // The mark in the app's environment tells arcade that the image ran this command.
    let (mark, value) = super::files::COMMAND_MARK;
    Ok(format!(
        "#!/bin/sh\n# Written by arcade: the command this app runs.\n\
         {mark}={value}\nexport {mark}\n{line}\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_the_command() {
        let args: Vec<String> = ["xterm", "-title", "it's \"$(x)\" `y` \\ ;|&", "", "*"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let script = command_script(&args).unwrap();
        // A real shell reads the line back, printing each argument on a line of its own.
        let line = script
            .lines()
            .last()
            .unwrap()
            .replacen("exec", "printf '%s\\n'", 1);
        let output = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&line)
            .output()
            .unwrap();
        let printed = String::from_utf8(output.stdout).unwrap();
        assert_eq!(printed, args.join("\n") + "\n", "{script}");
        assert!(command_script(&["a\0b".into()]).is_err());
    }

    #[test]
    fn entry_runs_the_contract_in_order() {
        let script = entry_script();
        let init = script.find("/skaha/init.sh\n").unwrap();
        let startup = script
            .find("exec /skaha/startup.sh /run/arcade/command.sh")
            .unwrap();
        let fallback = script.rfind("exec /run/arcade/command.sh").unwrap();
        assert!(init < startup && startup < fallback);
    }
}
