//! How a client's output is matched: the lesson decides, the label never fails it.
//!
//! Students copy the book's `printf` and change it a little: `Message from server : `
//! (the book's own hello_client), `message from server:`, `Message form server:`, or a
//! reader that prints the label once per `read()` (the book's echo_mpclient). A check
//! looks for the *bytes its lesson is about* (the reply, whole, in order, once; a
//! number) and tolerates the label before them. The rule, written once here and in the
//! README's "How output is matched":
//!
//! 1. Lines are compared after removing `\r` and trailing white space.
//! 2. A line *shows* a text when it ends with the text and what comes before it is
//!    nothing, a prompt or a label: anything that ends in `:`, `>`, `?`, `=`, `-` or a
//!    space (`Input message: Message from server: hello` shows `hello`).
//! 3. A label *reads as* the book's when, case, spaces and punctuation aside, it is the
//!    book's words within a typo or two. Another label is accepted too, with a note.
//! 4. Where a check is about a stream (every byte back, in order), the labels are taken
//!    out wherever they stand, once per read or once per line, before the bytes are
//!    compared.
//! 5. When the bytes are there but in another form (Python's `b'hello'`, the reply and
//!    more on its line), the failure says so and quotes the line expected; it never
//!    blames the lesson.

/// A label the book prints before a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label {
    /// The book's words, with the colon and space it prints: `Message from server: `.
    pub book: &'static str,
}

/// What the book's echo clients print before a reply.
pub const MESSAGE_FROM_SERVER: Label = Label {
    book: "Message from server: ",
};

/// What the book's op_client prints before the result.
pub const OPERATION_RESULT: Label = Label {
    book: "Operation result: ",
};

/// What the book's tcp_client prints before its read count.
pub const READ_COUNT: Label = Label {
    book: "Function read call count: ",
};

/// How a line showed the text it was searched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// The line, as printed (trimmed).
    pub line: String,
    /// What stood before the text on its line (a prompt, a label, or nothing).
    pub before: String,
}

impl Shown {
    /// The note a report adds when the label before the text is not the book's (spaces
    /// around the colon aside: the book itself prints `Message from server : `).
    pub fn note(&self, label: Label) -> Option<String> {
        let before = self.before.trim_end();
        if before.is_empty() || ends_with_book_label(before, label) {
            return None;
        }
        Some(format!(
            "the book prints {}; yours prints {}",
            crate::report::quote(label.book),
            crate::report::quote(self.before.trim_end())
        ))
    }
}

/// Letters and digits only, lowercased: what is left of a label when case, spaces and
/// punctuation are put aside.
fn letters(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The edit distance between two short strings (insertions, deletions, substitutions).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            prev = here;
        }
    }
    row[b.len()]
}

/// Whether `candidate` reads as the book's label: its letters are the book's within a
/// typo or two (`Message form server :` reads as `Message from server: `).
pub fn reads_as(candidate: &str, label: Label) -> bool {
    let (c, b) = (letters(candidate), letters(label.book));
    !c.is_empty() && distance(&c, &b) <= (b.len() / 8).max(2)
}

/// Whether `before` ends with the book's label exactly, spaces around the colon and
/// trailing spaces aside (no note for the book's own variants).
fn ends_with_book_label(before: &str, label: Label) -> bool {
    let squeeze = |s: &str| -> String { s.chars().filter(|c| !c.is_whitespace()).collect() };
    squeeze(before).ends_with(&squeeze(label.book))
}

/// Whether `before` may stand before a shown text: nothing, or something ending in a
/// separator (a prompt, a label).
fn separates(before: &str) -> bool {
    before.is_empty()
        || before
            .chars()
            .last()
            .is_some_and(|c| c.is_whitespace() || ":>?=-".contains(c))
}

/// Lines of output, `\r` removed and trailing white space trimmed.
pub fn lines_of(output: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(output)
        .split('\n')
        .map(|l| l.replace('\r', "").trim_end().to_string())
        .collect()
}

/// The first line that shows `text` (rule 2).
pub fn find_shown(lines: &[String], text: &str) -> Option<Shown> {
    let text = text.trim_end();
    lines.iter().find_map(|line| {
        let before = line.strip_suffix(text)?;
        separates(before).then(|| Shown {
            line: line.clone(),
            before: before.to_string(),
        })
    })
}

/// The lines that hold `text` without showing it (rule 5): `b'hello\n'`, `hello!!`.
pub fn held_not_shown(lines: &[String], text: &str) -> Vec<String> {
    let text = text.trim_end();
    lines
        .iter()
        .filter(|l| l.contains(text) && find_shown(std::slice::from_ref(l), text).is_none())
        .cloned()
        .collect()
}

/// Output with every label that reads as the book's taken out (rule 4), wherever it
/// stands, with the one space after its colon: `Message from server: line 00` then
/// `Message from server: 01\n` is `line 0001\n`. Returns the text and the labels seen.
pub fn strip_labels(output: &str, label: Label) -> (String, Vec<String>) {
    let book_len = label.book.trim_end().len();
    let mut out = String::with_capacity(output.len());
    let mut seen: Vec<String> = Vec::new();
    let mut rest = output;
    while let Some(colon) = rest.find(':') {
        // The label ends at this colon; try the lengths a typo or spacing allows.
        let head = &rest[..colon];
        // Of the starts that read as the label, the closest to the book's words, then
        // one at a word's start, then the longest.
        let book = letters(label.book);
        let found = (book_len.saturating_sub(4)..=book_len + 4)
            .filter_map(|len| {
                let start = head.len().checked_sub(len.saturating_sub(1))?;
                head.is_char_boundary(start).then_some(start)
            })
            .filter(|&start| {
                let candidate = &head[start..];
                !candidate.contains('\n') && reads_as(candidate, label)
            })
            .min_by_key(|&start| {
                let at_word = head[..start]
                    .chars()
                    .last()
                    .is_none_or(|c| !c.is_ascii_alphabetic());
                (distance(&letters(&head[start..]), &book), !at_word, start)
            });
        match found {
            Some(start) => {
                out.push_str(&rest[..start]);
                let label_text = &rest[start..=colon];
                if !seen.iter().any(|s| s == label_text.trim()) {
                    seen.push(label_text.trim().to_string());
                }
                rest = &rest[colon + 1..];
                rest = rest.strip_prefix(' ').unwrap_or(rest);
            }
            None => {
                out.push_str(&rest[..=colon]);
                rest = &rest[colon + 1..];
            }
        }
    }
    out.push_str(rest);
    (out, seen)
}

/// The note for labels seen by [`strip_labels`] that are not the book's.
pub fn labels_note(seen: &[String], label: Label) -> Option<String> {
    let other: Vec<&String> = seen
        .iter()
        .filter(|s| !ends_with_book_label(s, label))
        .collect();
    other.first().map(|s| {
        format!(
            "the book prints {}; yours prints {}",
            crate::report::quote(label.book),
            crate::report::quote(s)
        )
    })
}

/// The integer at the end of the first line whose text before it reads as `label` or,
/// failing that, ends in a separator; with how the line showed it.
pub fn find_number(lines: &[String], label: Label) -> Option<(i64, Shown)> {
    let candidates: Vec<(i64, Shown)> = lines
        .iter()
        .filter_map(|line| {
            let digits = line
                .char_indices()
                .rev()
                .take_while(|(_, c)| c.is_ascii_digit())
                .last()?
                .0;
            let start = if line[..digits].ends_with('-') {
                digits - 1
            } else {
                digits
            };
            let number: i64 = line[start..].parse().ok()?;
            let before = &line[..start];
            separates(before).then(|| {
                (
                    number,
                    Shown {
                        line: line.clone(),
                        before: before.to_string(),
                    },
                )
            })
        })
        .collect();
    candidates
        .iter()
        .find(|(_, s)| reads_as(&s.before, label))
        .or_else(|| candidates.first())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        lines_of(text.as_bytes())
    }

    #[test]
    fn the_books_variants_show_the_reply_without_a_note() {
        for printed in [
            "Message from server: Hello World! \r\n",
            "Message from server : Hello World! \n",
            "Input message(Q to quit): Message from server: Hello World!\n",
            "Hello World!\n",
        ] {
            let shown = find_shown(&lines(printed), "Hello World!").expect(printed);
            assert_eq!(shown.note(MESSAGE_FROM_SERVER), None, "{printed}");
        }
    }

    #[test]
    fn other_labels_show_the_reply_with_a_note() {
        for printed in [
            "message from server : Hello\n",
            "Message form server: Hello\n",
            "Server says: Hello\n",
        ] {
            let shown = find_shown(&lines(printed), "Hello").expect(printed);
            assert!(shown.note(MESSAGE_FROM_SERVER).is_some(), "{printed}");
        }
    }

    #[test]
    fn a_reply_cut_or_in_another_form_is_not_shown() {
        let printed = lines("Message from server: Hello, wor\nld\nb'Hello, world'\n");
        assert_eq!(find_shown(&printed, "Hello, world"), None);
        assert_eq!(
            held_not_shown(&printed, "Hello, world"),
            vec!["b'Hello, world'"]
        );
    }

    #[test]
    fn labels_printed_once_per_read_are_taken_out_of_a_stream() {
        let printed = "Message from server: line 0001\nline 00Message from server: 02\nmessage from server : line 0003\n";
        let (text, seen) = strip_labels(printed, MESSAGE_FROM_SERVER);
        assert_eq!(text, "line 0001\nline 0002\nline 0003\n");
        assert!(labels_note(&seen, MESSAGE_FROM_SERVER).is_some());
        let (text, seen) = strip_labels("Message from server: a: b\n", MESSAGE_FROM_SERVER);
        assert_eq!(text, "a: b\n");
        assert_eq!(labels_note(&seen, MESSAGE_FROM_SERVER), None);
    }

    #[test]
    fn numbers_are_found_after_their_label_whatever_its_wording() {
        for printed in [
            "Operation result: -3500\n",
            "Operation result : -3500\n",
            "OPERATION result : -3500\n",
            "-3500\n",
        ] {
            let (n, _) = find_number(&lines(printed), OPERATION_RESULT).expect(printed);
            assert_eq!(n, -3500, "{printed}");
        }
        let (n, shown) =
            find_number(&lines("Hello World!\ncount : 12\n"), READ_COUNT).expect("count");
        assert_eq!(n, 12);
        assert!(shown.note(READ_COUNT).is_some());
    }
}
