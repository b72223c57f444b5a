//! Words for people: a count with its noun in the right number, so no line says "1 images".

/// `n` and the noun for it: `count(1, "image", "images")` is "1 image".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_nouns() {
        assert_eq!(count(0, "image", "images"), "0 images");
        assert_eq!(count(1, "entry", "entries"), "1 entry");
        assert_eq!(count(2, "warning", "warnings"), "2 warnings");
    }
}
