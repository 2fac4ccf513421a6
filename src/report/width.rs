//! Text laid out by display width, not bytes or chars: CJK resource names
//! take two columns a character, combining marks none. Names too long for
//! their column lose their middle, so both ends stay readable.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Columns `s` takes on a terminal.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` in exactly `cols` columns: padded on the right, or cut in the
/// middle with `…` when it is wider.
pub fn left(s: &str, cols: usize) -> String {
    let s = elide(s, cols);
    let pad = cols.saturating_sub(width(&s));
    format!("{s}{}", " ".repeat(pad))
}

/// `s` in exactly `cols` columns, padded on the left.
pub fn right(s: &str, cols: usize) -> String {
    let s = elide(s, cols);
    let pad = cols.saturating_sub(width(&s));
    format!("{}{s}", " ".repeat(pad))
}

/// `s` if it fits in `cols` columns, else its start and end around `…`.
pub fn elide(s: &str, cols: usize) -> String {
    if width(s) <= cols {
        return s.to_string();
    }
    if cols == 0 {
        return String::new();
    }
    let keep = cols - 1;
    let head_cols = keep.div_ceil(2);
    let tail_cols = keep - head_cols;
    let mut head = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > head_cols {
            break;
        }
        used += w;
        head.push(c);
    }
    let mut tail: Vec<char> = Vec::new();
    let mut used = 0;
    for c in s.chars().rev() {
        let w = c.width().unwrap_or(0);
        if used + w > tail_cols {
            break;
        }
        used += w;
        tail.push(c);
    }
    tail.reverse();
    format!("{head}…{}", tail.into_iter().collect::<String>())
}

/// Words of `s` in lines of at most `cols` columns (a word longer than a
/// line gets a line of its own).
pub fn wrap(s: &str, cols: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in s.split_whitespace() {
        if !line.is_empty() && width(&line) + 1 + width(word) > cols {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_by_display_width() {
        assert_eq!(width("资源"), 4);
        assert_eq!(left("资源", 6), "资源  ");
        assert_eq!(right("ab", 4), "  ab");
        assert_eq!(elide("ClusterRegSetValue", 9), "Clus…alue");
        assert_eq!(elide("数据库资源名称很长", 7), "数…长");
        assert_eq!(width(&left("数据库资源名称很长", 7)), 7);
        assert_eq!(wrap("one two three four", 9), ["one two", "three", "four"]);
    }
}
