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
    /// Outside quotes (also inside `$(...)` and `${...}`): a word of its own.
    Unquoted,
    /// Inside `"..."`.
    Double,
    /// Inside `'...'`.
    Single,
    /// In the body of a here-document whose delimiter is not quoted (expansions happen).
    HereDoc,
    /// In a `#` comment.
    Comment,
    /// Where no reference is safe, or where the lexer cannot be sure: a template variable
    /// there is refused, saying why.
    Unsafe(&'static str),
}

impl ShellContext {
    /// The text that stands for the environment variable `name` here, or why none may.
    pub fn reference(&self, name: &str) -> Result<String, &'static str> {
        Ok(match self {
            ShellContext::Unquoted => format!("\"${{{name}}}\""),
            ShellContext::Double | ShellContext::HereDoc | ShellContext::Comment => {
                format!("${{{name}}}")
            }
            ShellContext::Single => format!("'\"${{{name}}}\"'"),
            ShellContext::Unsafe(why) => return Err(why),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Frame {
    /// The script itself, the inside of `$(...)`, or a subshell: its open parentheses,
    /// and the `case` statements open in it (whose patterns end with a `)`).
    Code {
        parens: usize,
        cases: usize,
    },
    /// Inside a parameter expansion `${...}` (with its open braces); in double quotes a
    /// `'` there is a plain character.
    Brace {
        braces: usize,
        in_double: bool,
    },
    /// Arithmetic, `$((...))` or `((...))`: the shell evaluates values there as code.
    Arith {
        open: usize,
    },
    Backtick,
    Double,
    Single,
    /// `$'...'` (bash): a backslash quotes the next character.
    AnsiC,
    Comment,
    /// A here-document's body; `line` is the current line so far.
    HereDoc(HereDoc),
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
    /// `$(` or a word-start `(` was the last thing read: a second `(` makes arithmetic.
    maybe_arith: bool,
    /// Characters of a `<<` operator and its delimiter being read.
    heredoc_word: Option<String>,
    /// The bare word being read in code (to see `case` and `esac`).
    word: String,
    /// A construct shells read differently was met (a `'` in `"${x:-...}"`: literal for
    /// dash, a quote for bash): no template after it is trusted.
    unsure: bool,
}

impl Default for ShellLexer {
    fn default() -> Self {
        ShellLexer {
            stack: vec![Frame::Code {
                parens: 0,
                cases: 0,
            }],
            pending: Vec::new(),
            prev: None,
            escaped: false,
            dollar: false,
            maybe_arith: false,
            heredoc_word: None,
            word: String::new(),
            unsure: false,
        }
    }
}

impl ShellLexer {
    pub fn new() -> Self {
        Self::default()
    }

    /// The context a variable placed right now would be in.
    pub fn context(&self) -> ShellContext {
        if self.unsure {
            return ShellContext::Unsafe(
                "follows a construct that dash and bash read differently (a ' inside \"${...}\")",
            );
        }
        if self.escaped {
            return ShellContext::Unsafe("follows a backslash: write the template on its own");
        }
        if self.heredoc_word.is_some() {
            return ShellContext::Unsafe("is in a here-document's delimiter");
        }
        match self.stack.last() {
            Some(Frame::Double) => ShellContext::Double,
            Some(Frame::Single) => ShellContext::Single,
            Some(Frame::Comment) => ShellContext::Comment,
            Some(Frame::HereDoc(h)) if h.quoted => ShellContext::Unsafe(
                "is in a quoted here-document (<<'EOF'), where the shell expands nothing: use an unquoted delimiter (<<EOF)",
            ),
            Some(Frame::HereDoc(_)) => ShellContext::HereDoc,
            Some(Frame::Arith { .. }) => ShellContext::Unsafe(
                "is in arithmetic ($((...)) or ((...))), where the shell evaluates a value as code: read the environment variable in the script instead",
            ),
            Some(Frame::Backtick) => ShellContext::Unsafe("is in backticks: write $(...) instead"),
            Some(Frame::AnsiC) => ShellContext::Unsafe("is in $'...'"),
            Some(Frame::Brace {
                in_double: true, ..
            }) => ShellContext::Double,
            _ => ShellContext::Unquoted,
        }
    }

    /// Whether the text read so far ends outside every quote, expansion and
    /// here-document: otherwise the lexer may have lost track, and no template in it is
    /// trusted.
    pub fn at_rest(&self) -> bool {
        if self.escaped || self.unsure {
            return false;
        }
        // The text may end without a newline (after a here-document's delimiter, say).
        let mut end = self.clone();
        end.feed("\n");
        end.stack.len() == 1 && end.pending.is_empty() && end.heredoc_word.is_none()
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
        self.maybe_arith = false;
        self.word.push('\u{1}');
        // In a here-document, the line now holds more than its literal text.
        if let Some(Frame::HereDoc(h)) = self.stack.last_mut() {
            h.line.push('\u{1}');
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
        let maybe_arith = std::mem::take(&mut self.maybe_arith);
        match self.top().clone() {
            Frame::Single => {
                if c == '\'' {
                    self.stack.pop();
                }
            }
            Frame::AnsiC => {
                if escaped {
                    return;
                }
                match c {
                    '\\' => self.escaped = true,
                    '\'' => {
                        self.stack.pop();
                    }
                    _ => {}
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
                    _ => self.expansion_char(c, dollar),
                }
            }
            Frame::Arith { open } => {
                if escaped {
                    return;
                }
                match c {
                    '\\' => self.escaped = true,
                    '(' => *self.top() = Frame::Arith { open: open + 1 },
                    ')' if open <= 1 => {
                        self.stack.pop();
                    }
                    ')' => *self.top() = Frame::Arith { open: open - 1 },
                    _ => {}
                }
            }
            Frame::Backtick | Frame::Code { .. } | Frame::Brace { .. } => {
                self.code_char(c, escaped, dollar, maybe_arith)
            }
        }
    }

    /// A character of code: unquoted text, `$(...)`, `${...}` or backticks.
    fn code_char(&mut self, c: char, escaped: bool, dollar: bool, maybe_arith: bool) {
        let bare = c.is_ascii_alphanumeric() || c == '_';
        if !bare {
            self.end_word();
        }
        if escaped {
            return;
        }
        let word_start = matches!(
            self.prev,
            None | Some(' ' | '\t' | '\n' | ';' | '&' | '|' | '(')
        );
        let in_brace_in_double = matches!(
            self.top(),
            Frame::Brace {
                in_double: true,
                ..
            }
        );
        match c {
            c if bare => {
                if self.word.is_empty()
                    && !word_start
                    && self.prev.is_some_and(|p| {
                        !matches!(p, ' ' | '\t' | '\n' | ';' | '&' | '|' | '(' | ')')
                    })
                {
                    // Part of a longer word (`x=case`): not a keyword.
                    self.word.push('\u{1}');
                }
                self.word.push(c);
            }
            '\\' => self.escaped = true,
            '\'' if in_brace_in_double => self.unsure = true,
            '\'' if dollar => self.stack.push(Frame::AnsiC),
            '\'' => self.stack.push(Frame::Single),
            '"' => self.stack.push(Frame::Double),
            '$' => self.dollar = true,
            '`' if *self.top() == Frame::Backtick => {
                self.stack.pop();
            }
            '`' => self.stack.push(Frame::Backtick),
            '(' if maybe_arith => {
                // `$((` or `((`: arithmetic, opened by both parentheses.
                match self.top() {
                    Frame::Code { parens, .. } if *parens > 0 => *parens -= 1,
                    _ => {
                        self.stack.pop();
                    }
                }
                self.stack.push(Frame::Arith { open: 2 });
            }
            '(' if dollar => self.open_substitution(),
            '{' if dollar => self.stack.push(Frame::Brace {
                braces: 0,
                in_double: false,
            }),
            '(' => {
                if let Frame::Code { parens, .. } = self.top() {
                    *parens += 1;
                    self.maybe_arith = word_start;
                }
            }
            ')' => {
                let nested = self.stack.len() > 1;
                match self.top() {
                    // A `case` pattern ends with `)`.
                    Frame::Code { parens: 0, cases } if *cases > 0 => {}
                    Frame::Code { parens: 0, .. } if nested => {
                        self.stack.pop();
                    }
                    Frame::Code { parens, .. } => *parens = parens.saturating_sub(1),
                    _ => {}
                }
            }
            '{' => {
                if let Frame::Brace { braces, .. } = self.top() {
                    *braces += 1;
                }
            }
            '}' => match self.top() {
                Frame::Brace { braces: 0, .. } => {
                    self.stack.pop();
                }
                Frame::Brace { braces, .. } => *braces -= 1,
                _ => {}
            },
            '#' if word_start && !matches!(self.top(), Frame::Brace { .. }) => {
                self.stack.push(Frame::Comment)
            }
            '<' if self.prev == Some('<') && !matches!(self.top(), Frame::Brace { .. }) => {
                self.heredoc_word = Some(String::new());
            }
            '\n' if matches!(self.top(), Frame::Code { .. } | Frame::Backtick) => self.newline(),
            _ => {}
        }
    }

    /// The end of a bare word in code: `case` opens a statement, `esac` closes it.
    fn end_word(&mut self) {
        let word = std::mem::take(&mut self.word);
        if let Frame::Code { cases, .. } = self.top() {
            match word.as_str() {
                "case" => *cases += 1,
                "esac" => *cases = cases.saturating_sub(1),
                _ => {}
            }
        }
    }

    /// What starts an expansion where the shell expands like in double quotes (double
    /// quotes, an unquoted here-document's body): `$`, `$(`, `${`, a backtick.
    fn expansion_char(&mut self, c: char, dollar: bool) {
        match c {
            '$' => self.dollar = true,
            '(' if dollar => self.open_substitution(),
            '{' if dollar => self.stack.push(Frame::Brace {
                braces: 0,
                in_double: true,
            }),
            '`' => self.stack.push(Frame::Backtick),
            _ => {}
        }
    }

    /// `$(`: code again, until its `)`; a second `(` right away makes it arithmetic.
    fn open_substitution(&mut self) {
        self.stack.push(Frame::Code {
            parens: 0,
            cases: 0,
        });
        self.maybe_arith = true;
    }
}

mod heredoc;

use heredoc::HereDoc;

#[cfg(test)]
mod tests;
