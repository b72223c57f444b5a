//! The merged menu file (`applications-merged/*.menu`) that places our entries.
//!
//! Entries are included by desktop file ID (`<Filename>`), not by category, so they land exactly
//! where we put them; `<Layout>` fixes the order (newest version first), which menu
//! implementations would otherwise sort by name (and `1.10` would come before `1.9`).
//! See: <https://specifications.freedesktop.org/menu-spec/latest/>

use std::fmt::Write as _;

use quick_xml::escape::escape;

/// One `<Menu>` below the top menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    /// The `<Name>`: an ID of ours, unique among siblings and free of `/` as the spec requires;
    /// what users see comes from the `.directory` file.
    pub name: String,
    pub directory: String,
    pub include: Vec<String>,
    pub menus: Vec<Menu>,
    pub layout: Vec<LayoutItem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutItem {
    Menu(String),
    File(String),
}

impl Menu {
    pub fn new(name: String, directory: String) -> Menu {
        Menu {
            name,
            directory,
            include: Vec::new(),
            menus: Vec::new(),
            layout: Vec::new(),
        }
    }
}

/// Everything before our top menu: root `Applications` (ignored when merging, as the spec says).
const HEADER: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
     <!DOCTYPE Menu PUBLIC \"-//freedesktop//DTD Menu 1.0//EN\"\n \
     \"http://www.freedesktop.org/standards/menu-spec/1.0/menu.dtd\">\n\
     <!-- Written by arcade menu sync, which rewrites it: do not edit. -->\n\
     <Menu>\n  <Name>Applications</Name>\n";

/// Renders the whole merged file: root `Applications`, our top menu, and its submenus.
pub fn render(top_name: &str, top_directory: &str, menus: &[Menu]) -> String {
    let mut merged = Merged::new(top_name, top_directory);
    for menu in menus {
        merged.add(menu);
    }
    merged.finish()
}

/// The merged file written one submenu of the top menu at a time, so a large menu's submenus need
/// not all be held until the end; [`render`] gives the same text.
pub struct Merged {
    out: String,
    layout: Vec<LayoutItem>,
}

impl Merged {
    pub fn new(top_name: &str, top_directory: &str) -> Merged {
        let mut out = String::from(HEADER);
        let _ = writeln!(out, "  <Menu>");
        let _ = writeln!(out, "    <Name>{}</Name>", escape(top_name));
        let _ = writeln!(out, "    <Directory>{}</Directory>", escape(top_directory));
        Merged {
            out,
            layout: Vec::new(),
        }
    }

    /// Writes the next submenu of the top menu.
    pub fn add(&mut self, menu: &Menu) {
        write_menu(&mut self.out, menu, 2);
        self.layout.push(LayoutItem::Menu(menu.name.clone()));
    }

    pub fn finish(mut self) -> String {
        write_layout(&mut self.out, "  ", &self.layout);
        self.out.push_str("  </Menu>\n</Menu>\n");
        self.out
    }
}

fn write_menu(out: &mut String, menu: &Menu, depth: usize) {
    let pad = "  ".repeat(depth);
    let _ = writeln!(out, "{pad}<Menu>");
    let _ = writeln!(out, "{pad}  <Name>{}</Name>", escape(menu.name.as_str()));
    let _ = writeln!(
        out,
        "{pad}  <Directory>{}</Directory>",
        escape(menu.directory.as_str())
    );
    if !menu.include.is_empty() {
        let _ = writeln!(out, "{pad}  <Include>");
        for file in &menu.include {
            let _ = writeln!(
                out,
                "{pad}    <Filename>{}</Filename>",
                escape(file.as_str())
            );
        }
        let _ = writeln!(out, "{pad}  </Include>");
    }
    for submenu in &menu.menus {
        write_menu(out, submenu, depth + 1);
    }
    write_layout(out, &pad, &menu.layout);
    let _ = writeln!(out, "{pad}</Menu>");
}

/// A menu's `<Layout>`, when it has one; `pad` is the menu's own indentation.
fn write_layout(out: &mut String, pad: &str, layout: &[LayoutItem]) {
    if layout.is_empty() {
        return;
    }
    let _ = writeln!(out, "{pad}  <Layout>");
    for item in layout {
        match item {
            LayoutItem::Menu(name) => {
                let _ = writeln!(
                    out,
                    "{pad}    <Menuname>{}</Menuname>",
                    escape(name.as_str())
                );
            }
            LayoutItem::File(id) => {
                let _ = writeln!(out, "{pad}    <Filename>{}</Filename>", escape(id.as_str()));
            }
        }
    }
    // Anything a menu implementation adds that we did not list goes at the end.
    let _ = writeln!(out, "{pad}    <Merge type=\"all\"/>");
    let _ = writeln!(out, "{pad}  </Layout>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nested_menus_in_layout_order() {
        let mut project = Menu::new("project-a&b".into(), "arcade-p.directory".into());
        project.include.push("arcade-x.desktop".into());
        project
            .layout
            .push(LayoutItem::File("arcade-x.desktop".into()));
        let text = render("Astro Software", "arcade-top.directory", &[project]);
        assert!(text.contains("<Name>Astro Software</Name>"));
        assert!(text.contains("<Name>project-a&amp;b</Name>"));
        assert!(text.contains("<Menuname>project-a&amp;b</Menuname>"));
        assert!(text.contains("<Filename>arcade-x.desktop</Filename>"));
        assert!(text.ends_with("</Menu>\n"));
    }
}
