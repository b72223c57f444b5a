//! Icons for well-known astronomy apps, shipped in `assets/icons` and installed into the user's
//! hicolor theme (the theme every icon lookup falls back to).
//! See: <https://specifications.freedesktop.org/icon-theme-spec/latest/>

use std::path::Path;

use super::{File, Root};
use crate::labels::IconKind;

/// The generic astronomy icon, for apps we have no picture of and for the top menu.
pub const ASTRO: &str = "arcade-astro";

/// Icon name, SVG and 48×48 PNG of each shipped icon.
const ICONS: &[(&str, &[u8], &[u8])] = &[
    (
        "arcade-terminal",
        include_bytes!("../../assets/icons/scalable/arcade-terminal.svg"),
        include_bytes!("../../assets/icons/48x48/arcade-terminal.png"),
    ),
    (
        "arcade-casa",
        include_bytes!("../../assets/icons/scalable/arcade-casa.svg"),
        include_bytes!("../../assets/icons/48x48/arcade-casa.png"),
    ),
    (
        "arcade-topcat",
        include_bytes!("../../assets/icons/scalable/arcade-topcat.svg"),
        include_bytes!("../../assets/icons/48x48/arcade-topcat.png"),
    ),
    (
        "arcade-aladin",
        include_bytes!("../../assets/icons/scalable/arcade-aladin.svg"),
        include_bytes!("../../assets/icons/48x48/arcade-aladin.png"),
    ),
    (
        "arcade-ds9",
        include_bytes!("../../assets/icons/scalable/arcade-ds9.svg"),
        include_bytes!("../../assets/icons/48x48/arcade-ds9.png"),
    ),
    (
        "arcade-carta",
        include_bytes!("../../assets/icons/scalable/arcade-carta.svg"),
        include_bytes!("../../assets/icons/48x48/arcade-carta.png"),
    ),
    (
        ASTRO,
        include_bytes!("../../assets/icons/scalable/arcade-astro.svg"),
        include_bytes!("../../assets/icons/48x48/arcade-astro.png"),
    ),
];

/// Picks the icon for an app name: a known app, or one whose name starts with a known app followed
/// by a non-letter (`casa6`, `casa-pipeline`, `ds9-terminal`); the generic icon otherwise.
pub fn for_app(app: &str) -> &'static str {
    let app = app.to_ascii_lowercase();
    for (icon, _, _) in ICONS {
        let known = &icon["arcade-".len()..];
        if let Some(rest) = app.strip_prefix(known)
            && !rest.starts_with(|c: char| c.is_ascii_alphabetic())
        {
            return icon;
        }
    }
    ASTRO
}

/// The icon files to install, relative to `$XDG_DATA_HOME`.
pub fn files() -> impl Iterator<Item = File> {
    ICONS.iter().flat_map(|(name, svg, png)| {
        [
            File {
                root: Root::Data,
                path: Path::new("icons/hicolor/scalable/apps").join(format!("{name}.svg")),
                content: svg.to_vec(),
                executable: false,
            },
            File {
                root: Root::Data,
                path: Path::new("icons/hicolor/48x48/apps").join(format!("{name}.png")),
                content: png.to_vec(),
                executable: false,
            },
        ]
    })
}

/// An image's own icon (from its labels, already checked): its icon name, made from its
/// content's hash so the same picture is installed once, and its file in the hicolor theme (an
/// SVG as scalable, a PNG in the folder of its size when that is one of the theme's, else 48×48).
pub fn from_label(kind: IconKind, bytes: &[u8]) -> (String, File) {
    let name = label_name(bytes);
    let folder = match kind {
        IconKind::Svg => "scalable".to_owned(),
        IconKind::Png => {
            let side = png_side(bytes)
                .filter(|side| [16, 22, 24, 32, 48, 64, 96, 128, 256, 512].contains(side))
                .unwrap_or(48);
            format!("{side}x{side}")
        }
    };
    let file = File {
        root: Root::Data,
        path: Path::new("icons/hicolor")
            .join(folder)
            .join("apps")
            .join(format!("{name}.{}", kind.extension())),
        content: bytes.to_vec(),
        executable: false,
    };
    (name, file)
}

/// The icon name of an image's own icon: from its content's hash, so one picture is one icon.
pub fn label_name(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = digest.as_ref()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("arcade-img-{hex}")
}

/// The side of a square PNG, from its header.
fn png_side(bytes: &[u8]) -> Option<u32> {
    let number = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let (width, height) = (number(16)?, number(20)?);
    (width == height).then_some(width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_icons() {
        assert_eq!(for_app("casa"), "arcade-casa");
        assert_eq!(for_app("CASA6"), "arcade-casa");
        assert_eq!(for_app("casa-pipeline"), "arcade-casa");
        assert_eq!(for_app("casablanca"), ASTRO);
        assert_eq!(for_app("ds9-terminal"), "arcade-ds9");
        assert_eq!(for_app("terminal"), "arcade-terminal");
        assert_eq!(for_app("astroml"), ASTRO);
    }
}
