//! Raw CSV records straight from a byte stream. This module owns buffering and tokenising (with
//! `csv-core`): it hands the CSV reader each record's fields together with the record's raw text
//! and the physical lines it occupies. Lines are counted by `\n` bytes, including those inside
//! quoted fields, so a line number is the one a user sees in an editor whether the file has LF or
//! CRLF line ends. Blank lines are skipped by the tokenizer; the newline counts around each record
//! let the caller count them. Nothing here knows about the client schema.

use std::io::{self, Read};

use csv_core::{ReadRecordResult, Reader as Tokenizer};

/// Bytes asked of the input per read. Large reads keep the tokenizer in its fast loop and make
/// the cost of moving a partial record to the front of the buffer negligible.
const READ_CHUNK: usize = 256 * 1024;

/// Longest record accepted, in raw bytes. A row of the client schema is well under a kilobyte;
/// a record this long almost always means a quote was opened and never closed, so the rest of the
/// file became one field. Refusing it keeps memory bounded whatever the input.
pub(crate) const MAX_RECORD_BYTES: usize = 1024 * 1024;

pub(crate) enum SourceError {
    Io(io::Error),
    RecordTooLong { line: u64 },
}

impl From<io::Error> for SourceError {
    fn from(error: io::Error) -> Self {
        SourceError::Io(error)
    }
}

/// Where the most recently read record lies in the buffers; valid until the next read.
#[derive(Debug, Default, Clone, Copy)]
struct CurrentRecord {
    field_count: usize,
    content_start: usize,
    content_end: usize,
    line: u64,
    end_line: u64,
    newlines_before: u64,
    newlines_after: u64,
}

/// One record as the tokenizer saw it. `content` is the raw text without the line breaks around
/// it (quotes and all, exactly as in the file).
pub(crate) struct RawRecord<'a> {
    fields: &'a [u8],
    ends: &'a [usize],
    pub content: &'a [u8],
    /// Physical line the record starts on (the first line of the file is 1).
    pub line: u64,
    /// Physical line the record ends on; greater than `line` when a quoted field holds line breaks.
    pub end_line: u64,
    /// `\n` bytes between the end of the previous record's content and this record's content
    /// that belong to this record's read (blank lines and possibly the previous line break).
    pub newlines_before: u64,
    /// `\n` bytes after this record's content that belong to this record's read (its line break).
    pub newlines_after: u64,
}

impl<'a> RawRecord<'a> {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn field(&self, index: usize) -> &'a [u8] {
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        &self.fields[start..self.ends[index]]
    }
}

pub(crate) struct RecordSource<R> {
    input: R,
    tokenizer: Tokenizer,
    /// Raw input; `buf[..filled]` is valid, `buf[pos..filled]` not yet tokenized.
    buf: Vec<u8>,
    filled: usize,
    pos: usize,
    /// Where the raw text of the record being read starts in `buf`.
    record_start: usize,
    input_done: bool,
    /// `\n` bytes of blank lines dropped from the front of the buffer while looking for the
    /// current record, so that many blank lines never count toward a record's length.
    dropped_newlines: u64,
    fields: Vec<u8>,
    ends: Vec<usize>,
    current: CurrentRecord,
    newlines_at_end: u64,
}

impl<R: Read> RecordSource<R> {
    pub fn new(input: R) -> Self {
        RecordSource {
            input,
            tokenizer: Tokenizer::new(),
            buf: vec![0; READ_CHUNK],
            filled: 0,
            pos: 0,
            record_start: 0,
            input_done: false,
            dropped_newlines: 0,
            fields: vec![0; 4096],
            ends: vec![0; 64],
            current: CurrentRecord::default(),
            newlines_at_end: 0,
        }
    }

    /// Reads until at least `want` bytes are buffered (or the input ends) and returns the start
    /// of the input. Only meaningful before the first record is read.
    pub fn peek(&mut self, want: usize) -> io::Result<&[u8]> {
        let want = want.min(self.buf.len());
        while self.filled < want && !self.input_done {
            self.read_more()?;
        }
        Ok(&self.buf[..self.filled])
    }

    /// Skips bytes at the very start of the input (a byte-order mark) so the tokenizer never
    /// sees them. Only meaningful before the first record is read.
    pub fn skip_start(&mut self, count: usize) {
        let count = count.min(self.filled);
        self.pos = count;
        self.record_start = count;
    }

    /// Reads the next record. `Ok(false)` at the end of the input.
    pub fn next_record(&mut self) -> Result<bool, SourceError> {
        self.record_start = self.pos;
        self.dropped_newlines = 0;
        let line_before = self.tokenizer.line();
        let (mut output_len, mut ends_len) = (0, 0);
        loop {
            if self.pos == self.filled && !self.input_done {
                self.refill(line_before)?;
            }
            let (result, read, written, ends_written) = self.tokenizer.read_record(
                &self.buf[self.pos..self.filled],
                &mut self.fields[output_len..],
                &mut self.ends[ends_len..],
            );
            self.pos += read;
            output_len += written;
            ends_len += ends_written;
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    if self.fields.len() >= MAX_RECORD_BYTES {
                        return Err(SourceError::RecordTooLong {
                            line: self.start_line(line_before),
                        });
                    }
                    let grown = self.fields.len() * 2;
                    self.fields.resize(grown, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let grown = self.ends.len() * 2;
                    self.ends.resize(grown, 0);
                }
                ReadRecordResult::Record => {
                    self.finish_record(ends_len, line_before);
                    return Ok(true);
                }
                ReadRecordResult::End => {
                    let raw = &self.buf[self.record_start..self.pos];
                    self.newlines_at_end = self.dropped_newlines + count_newlines(raw);
                    return Ok(false);
                }
            }
        }
    }

    /// The record returned by the last successful [`Self::next_record`].
    pub fn current(&self) -> RawRecord<'_> {
        let current = &self.current;
        RawRecord {
            fields: &self.fields,
            ends: &self.ends[..current.field_count],
            content: &self.buf[current.content_start..current.content_end],
            line: current.line,
            end_line: current.end_line,
            newlines_before: current.newlines_before,
            newlines_after: current.newlines_after,
        }
    }

    /// `\n` bytes after the last record (trailing blank lines), once the end has been reached.
    pub fn newlines_at_end(&self) -> u64 {
        self.newlines_at_end
    }

    fn finish_record(&mut self, field_count: usize, line_before: u64) {
        let raw = &self.buf[self.record_start..self.pos];
        let leading = raw.iter().take_while(|&&b| is_line_break(b)).count();
        let trailing = raw[leading..]
            .iter()
            .rev()
            .take_while(|&&b| is_line_break(b))
            .count();
        let newlines_before = self.dropped_newlines + count_newlines(&raw[..leading]);
        let newlines_after = count_newlines(&raw[raw.len() - trailing..]);
        self.current = CurrentRecord {
            field_count,
            content_start: self.record_start + leading,
            content_end: self.pos - trailing,
            line: line_before + newlines_before,
            end_line: self.tokenizer.line().saturating_sub(newlines_after),
            newlines_before,
            newlines_after,
        };
    }

    fn start_line(&self, line_before: u64) -> u64 {
        let raw = &self.buf[self.record_start..self.pos];
        let leading = raw.iter().take_while(|&&b| is_line_break(b)).count();
        line_before + self.dropped_newlines + count_newlines(&raw[..leading])
    }

    /// Makes room for and reads more input, keeping the raw text of the record being read.
    fn refill(&mut self, line_before: u64) -> Result<(), SourceError> {
        let blank = self.buf[self.record_start..self.pos]
            .iter()
            .take_while(|&&b| is_line_break(b))
            .count();
        self.dropped_newlines +=
            count_newlines(&self.buf[self.record_start..self.record_start + blank]);
        self.record_start += blank;
        if self.record_start > 0 {
            self.buf.copy_within(self.record_start..self.filled, 0);
            self.pos -= self.record_start;
            self.filled -= self.record_start;
            self.record_start = 0;
        }
        if self.filled > MAX_RECORD_BYTES {
            return Err(SourceError::RecordTooLong {
                line: self.start_line(line_before),
            });
        }
        if self.filled == self.buf.len() {
            let grown = self.buf.len() * 2;
            self.buf.resize(grown, 0);
        }
        self.read_more()?;
        Ok(())
    }

    fn read_more(&mut self) -> io::Result<()> {
        loop {
            match self.input.read(&mut self.buf[self.filled..]) {
                Ok(0) => {
                    self.input_done = true;
                    return Ok(());
                }
                Ok(count) => {
                    self.filled += count;
                    return Ok(());
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }
}

fn is_line_break(byte: u8) -> bool {
    byte == b'\n' || byte == b'\r'
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}
