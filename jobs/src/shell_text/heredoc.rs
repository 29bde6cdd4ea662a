//! Here-documents: the `<<[-]WORD` that announces one, its body read line by line after
//! the announcing line ends, and its end at the delimiter line.

use super::{Frame, ShellLexer};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HereDoc {
    pub(super) delimiter: String,
    pub(super) quoted: bool,
    pub(super) strip_tabs: bool,
    pub(super) line: String,
}

impl ShellLexer {
    /// Reads the `<<[-]WORD` of a here-document; true while the character belongs to it.
    pub(super) fn read_heredoc_word(&mut self, c: char) -> bool {
        let Some(word) = &mut self.heredoc_word else {
            return false;
        };
        if word.is_empty() && c == '<' {
            // `<<<`: a here-string, not a here-document.
            self.heredoc_word = None;
            return true;
        }
        let blank = c == ' ' || c == '\t';
        let ends =
            c == '\n' || c == ';' || c == '&' || c == '|' || c == ')' || c == '<' || c == '>';
        let trimmed = word.trim_start_matches('-').trim();
        if (blank && !trimmed.is_empty() && !open_quote(word)) || (ends && !open_quote(word)) {
            let raw = std::mem::take(word);
            self.heredoc_word = None;
            self.announce(&raw);
            return !ends;
        }
        word.push(c);
        true
    }

    fn announce(&mut self, raw: &str) {
        let strip_tabs = raw.starts_with('-');
        let word = raw.trim_start_matches('-').trim();
        if word.is_empty() {
            return;
        }
        let quoted = word.contains(['\'', '"', '\\']);
        let delimiter: String = word
            .chars()
            .filter(|c| !matches!(c, '\'' | '"' | '\\'))
            .collect();
        self.pending.push(HereDoc {
            delimiter,
            quoted,
            strip_tabs,
            line: String::new(),
        });
    }

    /// The end of a line of code: announced here-documents start.
    pub(super) fn newline(&mut self) {
        self.end_word();
        if let Some(w) = self.heredoc_word.take() {
            self.announce(&w);
        }
        if !self.pending.is_empty() {
            let mut docs = std::mem::take(&mut self.pending);
            docs.reverse();
            for d in docs {
                self.stack.push(Frame::HereDoc(d));
            }
        }
    }

    pub(super) fn heredoc_char(&mut self, c: char, escaped: bool, dollar: bool) {
        let Some(Frame::HereDoc(h)) = self.stack.last_mut() else {
            return;
        };
        if c == '\n' {
            let line = std::mem::take(&mut h.line);
            let line = if h.strip_tabs {
                line.trim_start_matches('\t')
            } else {
                line.as_str()
            };
            if line == h.delimiter {
                self.stack.pop();
            }
            return;
        }
        h.line.push(c);
        if h.quoted || escaped {
            return;
        }
        if c == '\\' {
            self.escaped = true;
        } else {
            self.expansion_char(c, dollar);
        }
    }
}

/// Whether a here-document word still has a quote open (`'E O F'` is one word).
fn open_quote(word: &str) -> bool {
    word.matches('\'').count() % 2 == 1 || word.matches('"').count() % 2 == 1
}
