//! Where a point of shell text stands (quoted or not, in a here-document, in a comment), so
//! that a template variable placed there reaches the shell as data, never as code.
//!
//! A value is never pasted into shell text: the variable becomes a reference to an
//! environment variable that holds the value, written for the context it sits in
//! ([`ShellContext::reference`]). The shell expands a variable once and never parses its
//! value again, so quotes, `$(...)`, backticks, `;` or newlines in a value stay characters.

/// The quoting context at a point of shell text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellContext {
    /// Outside quotes (also inside `$(...)`, backticks and `${...}`): a word of its own.
    Unquoted,
    /// Inside `"..."`.
    Double,
    /// Inside `'...'`.
    Single,
    /// In the body of a here-document whose delimiter is not quoted (expansions happen).
    HereDoc,
    /// In the body of a here-document whose delimiter is quoted: nothing is expanded.
    QuotedHereDoc { delimiter: String, strip_tabs: bool },
    /// In a `#` comment.
    Comment,
}

impl ShellContext {
    /// The text that stands for the environment variable `name` here, or `None` where the
    /// shell expands nothing (a quoted here-document: the value goes in as text).
    pub fn reference(&self, name: &str) -> Option<String> {
        Some(match self {
            ShellContext::Unquoted => format!("\"${{{name}}}\""),
            ShellContext::Double | ShellContext::HereDoc | ShellContext::Comment => {
                format!("${{{name}}}")
            }
            ShellContext::Single => format!("'\"${{{name}}}\"'"),
            ShellContext::QuotedHereDoc { .. } => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Frame {
    /// The script itself, or the inside of `$(...)` (with its open parentheses).
    Code {
        parens: usize,
    },
    /// Inside a parameter expansion `${...}` (with its open braces).
    Brace {
        braces: usize,
    },
    Backtick,
    Double,
    Single,
    Comment,
    /// A here-document's body; `line` is the current line so far.
    HereDoc(HereDoc),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct HereDoc {
    delimiter: String,
    quoted: bool,
    strip_tabs: bool,
    line: String,
}

/// Follows shell text as it is written, piece by piece.
#[derive(Debug, Clone)]
pub struct ShellLexer {
    stack: Vec<Frame>,
    /// Here-documents announced on the current line, read after its newline.
    pending: Vec<HereDoc>,
    /// The previous character (a word starts after a blank or an operator).
    prev: Option<char>,
    /// A backslash was the last character: the next one is quoted.
    escaped: bool,
    /// A `$` was the last character (unquoted or in double quotes).
    dollar: bool,
    /// Characters of a `<<` operator and its delimiter being read.
    heredoc_word: Option<String>,
}

impl Default for ShellLexer {
    fn default() -> Self {
        ShellLexer {
            stack: vec![Frame::Code { parens: 0 }],
            pending: Vec::new(),
            prev: None,
            escaped: false,
            dollar: false,
            heredoc_word: None,
        }
    }
}

impl ShellLexer {
    pub fn new() -> Self {
        Self::default()
    }

    /// The context a variable placed right now would be in.
    pub fn context(&self) -> ShellContext {
        match self.stack.last() {
            Some(Frame::Double) => ShellContext::Double,
            Some(Frame::Single) => ShellContext::Single,
            Some(Frame::Comment) => ShellContext::Comment,
            Some(Frame::HereDoc(h)) if h.quoted => ShellContext::QuotedHereDoc {
                delimiter: h.delimiter.clone(),
                strip_tabs: h.strip_tabs,
            },
            Some(Frame::HereDoc(_)) => ShellContext::HereDoc,
            _ => ShellContext::Unquoted,
        }
    }

    /// Reads `text` (literal shell text between variables).
    pub fn feed(&mut self, text: &str) {
        for c in text.chars() {
            self.step(c);
            self.prev = Some(c);
        }
    }

    /// A variable's reference was written here: it continues the current word.
    pub fn feed_word(&mut self) {
        self.prev = Some('x');
        self.dollar = false;
        self.escaped = false;
        if let Some(w) = &mut self.heredoc_word {
            w.push('x');
        }
    }

    fn top(&mut self) -> &mut Frame {
        let last = self.stack.len() - 1;
        &mut self.stack[last]
    }

    fn step(&mut self, c: char) {
        if self.heredoc_word.is_some() && self.read_heredoc_word(c) {
            return;
        }
        let escaped = std::mem::take(&mut self.escaped);
        let dollar = std::mem::take(&mut self.dollar);
        match self.top().clone() {
            Frame::Single => {
                if c == '\'' {
                    self.stack.pop();
                }
            }
            Frame::Comment => {
                if c == '\n' {
                    self.stack.pop();
                    self.newline();
                }
            }
            Frame::HereDoc(_) => self.heredoc_char(c, escaped, dollar),
            Frame::Double => {
                if escaped {
                    return;
                }
                match c {
                    '\\' => self.escaped = true,
                    '"' => {
                        self.stack.pop();
                    }
                    '$' => self.dollar = true,
                    '(' if dollar => self.stack.push(Frame::Code { parens: 0 }),
                    '{' if dollar => self.stack.push(Frame::Brace { braces: 0 }),
                    '`' => self.stack.push(Frame::Backtick),
                    _ => {}
                }
            }
            Frame::Backtick | Frame::Code { .. } | Frame::Brace { .. } => {
                self.code_char(c, escaped, dollar)
            }
        }
    }

    /// A character of code: unquoted text, `$(...)`, `${...}` or backticks.
    fn code_char(&mut self, c: char, escaped: bool, dollar: bool) {
        if escaped {
            return;
        }
        let word_start = matches!(
            self.prev,
            None | Some(' ' | '\t' | '\n' | ';' | '&' | '|' | '(' | ')')
        );
        match c {
            '\\' => self.escaped = true,
            '\'' => self.stack.push(Frame::Single),
            '"' => self.stack.push(Frame::Double),
            '$' => self.dollar = true,
            '`' if *self.top() == Frame::Backtick => {
                self.stack.pop();
            }
            '`' => self.stack.push(Frame::Backtick),
            '(' if dollar => self.stack.push(Frame::Code { parens: 0 }),
            '{' if dollar => self.stack.push(Frame::Brace { braces: 0 }),
            '(' => {
                if let Frame::Code { parens } = self.top() {
                    *parens += 1;
                }
            }
            ')' => {
                let nested = self.stack.len() > 1;
                match self.top() {
                    Frame::Code { parens: 0 } if nested => {
                        self.stack.pop();
                    }
                    Frame::Code { parens } => *parens = parens.saturating_sub(1),
                    _ => {}
                }
            }
            '{' => {
                if let Frame::Brace { braces } = self.top() {
                    *braces += 1;
                }
            }
            '}' => match self.top() {
                Frame::Brace { braces: 0 } => {
                    self.stack.pop();
                }
                Frame::Brace { braces } => *braces -= 1,
                _ => {}
            },
            '#' if word_start && !matches!(self.top(), Frame::Brace { .. }) => {
                self.stack.push(Frame::Comment)
            }
            // `<<` starts a here-document, except as a shift in arithmetic (`$((a << 2))`).
            '<' if self.prev == Some('<')
                && !matches!(
                    self.top(),
                    Frame::Brace { .. } | Frame::Code { parens: 1.. }
                ) =>
            {
                self.heredoc_word = Some(String::new());
            }
            '\n' if self.stack.len() == 1 || matches!(self.top(), Frame::Code { .. }) => {
                self.newline()
            }
            _ => {}
        }
    }

    /// Reads the `<<[-]WORD` of a here-document; true while the character belongs to it.
    fn read_heredoc_word(&mut self, c: char) -> bool {
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
    fn newline(&mut self) {
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

    fn heredoc_char(&mut self, c: char, escaped: bool, dollar: bool) {
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
        match c {
            '\\' => self.escaped = true,
            '$' => self.dollar = true,
            '(' if dollar => self.stack.push(Frame::Code { parens: 0 }),
            '{' if dollar => self.stack.push(Frame::Brace { braces: 0 }),
            '`' => self.stack.push(Frame::Backtick),
            _ => {}
        }
    }
}

/// Whether a here-document word still has a quote open (`'E O F'` is one word).
fn open_quote(word: &str) -> bool {
    word.matches('\'').count() % 2 == 1 || word.matches('"').count() % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_end(text: &str) -> ShellContext {
        let mut l = ShellLexer::new();
        l.feed(text);
        l.context()
    }

    #[test]
    fn contexts() {
        use ShellContext::*;
        assert_eq!(at_end("echo "), Unquoted);
        assert_eq!(at_end("echo \"a "), Double);
        assert_eq!(at_end("echo 'a "), Single);
        assert_eq!(at_end("echo 'a' \"b\" c"), Unquoted);
        assert_eq!(at_end("echo \"it's "), Double);
        assert_eq!(at_end("echo 'say \"hi "), Single);
        assert_eq!(at_end("x=$(echo \"a "), Double);
        assert_eq!(at_end("x=\"$(echo 'a "), Single);
        assert_eq!(at_end("x=\"$(echo a) "), Double);
        assert_eq!(at_end("echo `date` "), Unquoted);
        assert_eq!(at_end("echo \\\" "), Unquoted);
        assert_eq!(at_end("# it's a comment "), Comment);
        assert_eq!(at_end("# it's\necho "), Unquoted);
        assert_eq!(at_end("echo a#b "), Unquoted);
        assert_eq!(at_end("echo ${x#*/} "), Unquoted);
        assert_eq!(at_end("echo ${x:-'a "), Single);
        assert_eq!(at_end("cat <<EOF\nhello "), HereDoc);
        assert_eq!(at_end("cat <<EOF\nhello\nEOF\necho "), Unquoted);
        assert_eq!(
            at_end("cat <<'EOF'\nit's "),
            QuotedHereDoc {
                delimiter: "EOF".into(),
                strip_tabs: false
            }
        );
        assert_eq!(at_end("cat <<-\"END\" >f\n\tx\n\tEND\necho \""), Double);
        assert_eq!(at_end("cat <<<'x' \""), Double);
        assert_eq!(at_end("cat <<EOF | tr a b\n$(echo \"x "), Double);
        assert_eq!(at_end("echo $(( 1 + (2) )) \""), Double);
        assert_eq!(at_end("echo $(( 1 << 2 )) \""), Double);
    }
}
