//! Splitting output chunks into lines.

/// Longest line kept whole; longer output is cut into pieces of this size.
const MAX_LINE: usize = 64 * 1024;

#[derive(Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    /// Appends a chunk and returns the complete lines it finished.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=i).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            out.push(String::from_utf8_lossy(&line).into_owned());
        }
        while self.buf.len() >= MAX_LINE {
            let piece: Vec<u8> = self.buf.drain(..MAX_LINE).collect();
            out.push(String::from_utf8_lossy(&piece).into_owned());
        }
        out
    }

    /// The unterminated last line, if any.
    pub fn finish(&mut self) -> Option<String> {
        if self.buf.is_empty() {
            return None;
        }
        let line = String::from_utf8_lossy(&self.buf).into_owned();
        self.buf.clear();
        Some(line)
    }
}

/// A piece of a step's stream split at a marker line (see [`MarkedLines`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// A line of the step's own output.
    Line(String),
    /// Bytes after the marker: the output of what ran after the step.
    After(bytes::Bytes),
}

/// Splits a stream into lines, up to a line equal to `marker`; the bytes after it are
/// passed on untouched. The marker is printed after a newline of its own (the step's last
/// line may lack one), so when the step's output ended with a newline, the empty line
/// just before the marker is not the step's: empty lines are held back until the next
/// line shows whether they were.
pub struct MarkedLines {
    lines: LineSplitter,
    marker: Option<String>,
    held_empty: usize,
    after: bool,
}

impl MarkedLines {
    /// Without a marker, plain lines.
    pub fn new(marker: Option<String>) -> Self {
        MarkedLines {
            lines: LineSplitter::default(),
            marker,
            held_empty: 0,
            after: false,
        }
    }

    /// Whether the marker went by.
    pub fn found(&self) -> bool {
        self.after
    }

    pub fn push(&mut self, chunk: &[u8]) -> Vec<Piece> {
        if self.after {
            return vec![Piece::After(bytes::Bytes::copy_from_slice(chunk))];
        }
        let Some(marker) = self.marker.clone() else {
            return self
                .lines
                .push(chunk)
                .into_iter()
                .map(Piece::Line)
                .collect();
        };
        let mut out = Vec::new();
        let mut data = chunk;
        // Complete lines only: a line is looked at once it ends, so that the marker is
        // recognised with the bytes that follow it still in `data`.
        while let Some(i) = data.iter().position(|b| *b == b'\n') {
            let mut lines = self.lines.push(&data[..=i]);
            data = &data[i + 1..];
            let Some(line) = lines.pop() else { continue };
            for l in lines {
                self.emit(l, &mut out);
            }
            if line == marker {
                // One held empty line was the marker's own newline.
                self.held_empty = self.held_empty.saturating_sub(1);
                for _ in 0..std::mem::take(&mut self.held_empty) {
                    out.push(Piece::Line(String::new()));
                }
                self.after = true;
                if !data.is_empty() {
                    out.push(Piece::After(bytes::Bytes::copy_from_slice(data)));
                }
                return out;
            }
            self.emit(line, &mut out);
        }
        for l in self.lines.push(data) {
            self.emit(l, &mut out);
        }
        out
    }

    fn emit(&mut self, line: String, out: &mut Vec<Piece>) {
        if line.is_empty() && self.marker.is_some() {
            self.held_empty += 1;
            return;
        }
        for _ in 0..std::mem::take(&mut self.held_empty) {
            out.push(Piece::Line(String::new()));
        }
        out.push(Piece::Line(line));
    }

    /// The end of the stream: held lines and the unterminated last one.
    pub fn finish(&mut self) -> Vec<String> {
        if self.after {
            return Vec::new();
        }
        let mut out = vec![String::new(); std::mem::take(&mut self.held_empty)];
        out.extend(self.lines.finish());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_across_chunks() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"ab"), Vec::<String>::new());
        assert_eq!(s.push(b"c\r\nd\ne"), vec!["abc", "d"]);
        assert_eq!(s.finish().as_deref(), Some("e"));
        assert_eq!(s.finish(), None);
    }

    fn split(marker: &str, chunks: &[&[u8]]) -> (Vec<String>, Vec<u8>, bool) {
        let mut m = MarkedLines::new(Some(marker.to_string()));
        let (mut lines, mut after) = (Vec::new(), Vec::new());
        for c in chunks {
            for p in m.push(c) {
                match p {
                    Piece::Line(l) => lines.push(l),
                    Piece::After(b) => after.extend_from_slice(&b),
                }
            }
        }
        lines.extend(m.finish());
        (lines, after, m.found())
    }

    #[test]
    fn a_marker_line_splits_the_stream_and_its_own_newline_is_dropped() {
        // What the step printed, then the shell's "\nMARK\n", then binary data.
        for (step, want) in [
            (&b"abc\n"[..], vec!["abc"]),
            (b"abc", vec!["abc"]),
            (b"abc\n\n", vec!["abc", ""]),
            (b"", vec![]),
            (b"\n", vec![""]),
            (b"a\n\nb\n", vec!["a", "", "b"]),
        ] {
            let stream = [step, b"\nMARK\n", b"\x00tar\nMARK\n".as_slice()].concat();
            // Every way of cutting the stream into two chunks gives the same result.
            for cut in 0..=stream.len() {
                let (lines, after, found) = split("MARK", &[&stream[..cut], &stream[cut..]]);
                assert!(found);
                assert_eq!(lines, want, "{step:?} cut at {cut}");
                assert_eq!(after, b"\x00tar\nMARK\n", "{step:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn without_the_marker_every_line_is_kept() {
        let (lines, after, found) = split("MARK", &[b"a\n\n", b"MARKX\n\nb"]);
        assert!(!found && after.is_empty());
        assert_eq!(lines, vec!["a", "", "MARKX", "", "b"]);
        let mut plain = MarkedLines::new(None);
        assert_eq!(
            plain.push(b"x\n\nMARK\n"),
            vec![
                Piece::Line("x".into()),
                Piece::Line(String::new()),
                Piece::Line("MARK".into())
            ]
        );
    }
}
