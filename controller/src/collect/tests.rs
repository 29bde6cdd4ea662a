//! The collect stream's unpacking, with hostile streams.

use super::*;

fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // set_path refuses `..`; write the raw name as a hostile server would.
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn unpacks_relative_to_base_and_refuses_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let data = tar_of(&[
        ("tmp/fichier_a_log.txt", b"aaa"),
        ("tmp/../etc/passwd", b"x"),
        ("etc/shadow", b"x"),
        ("tmp/sub/b.txt", b"bb"),
    ]);
    let out = unpack(&data[..], dir.path(), &["/tmp/".to_string()], 1 << 20).unwrap();
    let got: Vec<_> = out
        .files
        .iter()
        .map(|f| (f.local_path.as_str(), f.size))
        .collect();
    assert_eq!(got, vec![("fichier_a_log.txt", 3), ("sub/b.txt", 2)]);
    assert_eq!(
        std::fs::read(dir.path().join("fichier_a_log.txt")).unwrap(),
        b"aaa"
    );
    assert_eq!(out.warnings.len(), 2, "{:?}", out.warnings);
    assert!(out.warnings.iter().all(|w| w.contains("refused")));
    assert!(!dir.path().join("../etc/passwd").exists());
}

#[test]
fn total_limit_is_enforced_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let data = tar_of(&[("tmp/a", b"12345"), ("tmp/b", b"12345"), ("tmp/c", b"1")]);
    let out = unpack(&data[..], dir.path(), &["/tmp/".to_string()], 6).unwrap();
    let got: Vec<_> = out.files.iter().map(|f| f.local_path.as_str()).collect();
    assert_eq!(got, vec!["a", "c"]);
    assert!(out.warnings[0].starts_with("/tmp/b: not collected: the total size limit"));
}

/// A collect stopped in the middle of a file (timeout, lost connection): the files
/// before it are kept, the cut one is not left half-written.
#[test]
fn stream_cut_short_keeps_whole_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![b'x'; 5000];
    let data = tar_of(&[("tmp/a", b"first"), ("tmp/b", &big), ("tmp/c", b"third")]);
    // a: header + 1 block; b: header, then 1000 of its 5000 bytes.
    let cut = &data[..512 * 3 + 1000];
    let out = unpack(cut, dir.path(), &["/tmp/".to_string()], 1 << 20).unwrap();
    let got: Vec<_> = out.files.iter().map(|f| f.local_path.as_str()).collect();
    assert_eq!(got, vec!["a"]);
    assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"first");
    assert!(
        !dir.path().join("b").exists(),
        "a half-written file was left"
    );
    assert!(
        out.warnings.iter().any(|w| w.contains("/tmp/b: cut short")),
        "{:?}",
        out.warnings
    );
    // Cut inside a header: the files before it are kept too.
    let cut = &data[..512 * 2 + 100];
    let out = unpack(
        cut,
        tempfile::tempdir().unwrap().path(),
        &["/tmp/".to_string()],
        1 << 20,
    )
    .unwrap();
    assert_eq!(out.files.len(), 1);
}

/// `b`'s stream, then a file `tmp/after`, unpacked into `dest`.
fn unpack_with_after(mut b: tar::Builder<Vec<u8>>, dest: &Path) -> Unpacked {
    let mut after = tar::Header::new_gnu();
    after.set_size(5);
    after.set_mode(0o644);
    b.append_data(&mut after, "tmp/after", &b"after"[..])
        .unwrap();
    let data = b.into_inner().unwrap();
    unpack(&data[..], dest, &["/tmp/".to_string()], 1 << 20).unwrap()
}

/// A stream of one file, `name` holding `data`, after a PAX header of `records`.
fn with_pax(records: &str, name: &str, data: &[u8]) -> tar::Builder<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut pax = tar::Header::new_ustar();
    pax.set_size(records.len() as u64);
    pax.set_entry_type(tar::EntryType::XHeader);
    pax.set_path("pax").unwrap();
    pax.set_cksum();
    b.append(&pax, records.as_bytes()).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_path(name).unwrap();
    h.set_cksum();
    b.append(&h, data).unwrap();
    b
}

/// A hostile server's stream: a PAX size far beyond the data, a million entries, a
/// huge name. Each ends with a warning, in bounded time and memory.
#[test]
fn hostile_streams_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let bases = ["/tmp/".to_string()];
    // A PAX header saying 1 TiB for a file of 3 bytes: the sum does not overflow and
    // the limit refuses it.
    let data = with_pax("22 size=1099511627776\n", "tmp/big", b"abc")
        .into_inner()
        .unwrap();
    let out = unpack(&data[..], dir.path(), &bases, 1 << 20).unwrap();
    assert!(out.files.is_empty(), "{:?}", out.files);
    assert!(
        out.warnings.iter().any(|w| w.contains("total size limit")),
        "{:?}",
        out.warnings
    );

    // More entries than allowed: the rest is not read, warnings are capped.
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..MAX_ENTRIES + 10 {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_path(format!("tmp/d{i}")).unwrap();
        h.set_cksum();
        b.append(&h, &b""[..]).unwrap();
    }
    let data = b.into_inner().unwrap();
    let out = unpack(&data[..], dir.path(), &bases, 1 << 20).unwrap();
    assert!(
        out.warnings.len() <= MAX_WARNINGS + 1,
        "{}",
        out.warnings.len()
    );
    assert!(
        out.warnings.last().unwrap().contains("more warnings"),
        "{:?}",
        out.warnings.last()
    );

    // A GNU long name of 64 KiB: refused by its length.
    let mut b = tar::Builder::new(Vec::new());
    let long = format!("tmp/{}", "n".repeat(64 << 10));
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    b.append_data(&mut h, &long, &b"x"[..]).unwrap();
    let data = b.into_inner().unwrap();
    let out = unpack(&data[..], dir.path(), &bases, 1 << 20).unwrap();
    assert!(out.files.is_empty());
    assert!(
        out.warnings.iter().any(|w| w.contains("a name of")),
        "{:?}",
        out.warnings
    );

    // A stream longer than its bound ends as a cut stream.
    let endless = std::io::repeat(0).take(u64::MAX);
    let out = unpack(endless, dir.path(), &bases, 0);
    assert!(out.is_ok());
}

/// Reads `inner`, counting what was read.
struct Counted<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// A stream whose first entry is an extension of `size` bytes of `b'n'` (`kind` is a
/// GNU long name or link, or a PAX record), generated as it is read.
fn endless_extension(kind: tar::EntryType, size: u64) -> impl Read {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    h.set_cksum();
    std::io::Cursor::new(h.as_bytes().to_vec()).chain(std::io::repeat(b'n').take(size))
}

/// A long name or PAX record of 4 GiB: the tar crate would hold it whole in memory (and,
/// within a collect limit of 8 GiB, end with "no future member found"). It is cut once
/// the headers between two entries pass [`MAX_HEADERS`], whatever the collect's limit.
#[test]
fn a_long_name_of_gigabytes_is_never_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let bases = ["/tmp/".to_string()];
    for kind in [
        tar::EntryType::GNULongName,
        tar::EntryType::GNULongLink,
        tar::EntryType::XHeader,
    ] {
        let read = std::rc::Rc::new(std::cell::Cell::new(0));
        let stream = Counted {
            inner: endless_extension(kind, 4 << 30),
            read: read.clone(),
        };
        let out = unpack(stream, dir.path(), &bases, 8 << 30).unwrap();
        assert!(out.files.is_empty(), "{kind:?}: {:?}", out.files);
        assert!(
            out.warnings
                .iter()
                .any(|w| w.contains("the headers of one entry are over 1.0 MiB")),
            "{kind:?}: {:?}",
            out.warnings
        );
        // The rest is drained (the sender never blocks), a buffer at a time.
        assert_eq!(read.get(), 512 + (4 << 30), "{kind:?}");
    }
}

/// The budget is per entry: many files, each with a long name, are all collected.
#[test]
fn long_names_on_every_entry_are_collected() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut names = Vec::new();
    for i in 0..3000 {
        let name = format!("tmp/{i:04}-{}", "n".repeat(200));
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        b.append_data(&mut h, &name, &b"data"[..]).unwrap();
        names.push(name);
    }
    let data = b.into_inner().unwrap();
    assert!(data.len() as u64 > 2 * MAX_HEADERS);
    let out = unpack(&data[..], dir.path(), &["/tmp/".to_string()], 1 << 20).unwrap();
    assert_eq!(out.files.len(), 3000, "{:?}", out.warnings.first());
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
}

/// A GNU sparse entry whose hole is 2^62 bytes of nothing in the stream: skipping it by
/// reading would never end. It is refused, and the stream left there.
#[test]
fn a_sparse_entry_is_refused_and_ends_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_size(0);
    h.set_mode(0o644);
    h.as_old_mut().name[..10].copy_from_slice(b"tmp/sparse");
    let gnu = h.as_gnu_mut().unwrap();
    // Offset 2^62 in base 256, length 0; the file's real size the same.
    gnu.sparse[0].offset = [0x80, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0];
    gnu.sparse[0].numbytes = [b'0'; 12];
    gnu.sparse[0].numbytes[11] = 0;
    gnu.set_real_size(1 << 62);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b""[..]).unwrap();
    let out = unpack_with_after(b, dir.path());
    assert!(out.files.is_empty(), "{:?}", out.files);
    assert!(
        out.warnings.iter().any(|w| w
            == "/tmp/sparse: a sparse file in the collect stream: refused, and nothing after it"),
        "{:?}",
        out.warnings
    );
}

/// A PAX sparse entry (`GNU.sparse.*` records, as bsdtar writes them): its data is not
/// the file's, so it is skipped with a warning, and the entries after it are collected.
#[test]
fn a_pax_sparse_entry_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let records = "22 GNU.sparse.major=1\n22 GNU.sparse.minor=0\n";
    let b = with_pax(records, "tmp/holes", b"1\n0\n");
    let out = unpack_with_after(b, dir.path());
    let got: Vec<_> = out.files.iter().map(|f| f.local_path.as_str()).collect();
    assert_eq!(got, ["after"], "{:?}", out.warnings);
    assert_eq!(
        out.warnings,
        ["/tmp/holes: a sparse file (PAX) in the collect stream: not collected"]
    );
}
