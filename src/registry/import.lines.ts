/**
 * Splits a byte stream into lines in constant memory: a line longer than the limit is not kept whole (only its first
 * `maxBytes` bytes, flagged `tooLong`), whatever the file holds. Bytes are not decoded here, so a line with invalid
 * UTF-8 can be rejected on its own.
 */

/** One physical line: its 1-based number, its bytes (without '\n' or a trailing '\r'). */
export interface RawLine {
  number: number;
  bytes: Buffer;
  /** The line was longer than the limit; `bytes` holds only its beginning. */
  tooLong: boolean;
}

/** Feeds chunks in, gets complete lines out; `end()` returns the last line when the input did not end with '\n'. */
export interface LineSplitter {
  push(chunk: Buffer): Generator<RawLine>;
  end(): RawLine | null;
}

/** A splitter that keeps at most `maxBytes` of any line. */
export function lineSplitter(maxBytes: number): LineSplitter {
  let parts: Buffer[] = [];
  let kept = 0;
  let tooLong = false;
  let number = 0;

  const keep = (piece: Buffer) => {
    if (tooLong) return;
    if (kept + piece.length > maxBytes) {
      parts.push(piece.subarray(0, maxBytes - kept));
      kept = maxBytes;
      tooLong = true;
      return;
    }
    parts.push(piece);
    kept += piece.length;
  };
  const take = (): RawLine => {
    let bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, kept);
    if (!tooLong && bytes.length && bytes[bytes.length - 1] === 13) bytes = bytes.subarray(0, -1);
    const line = { number: ++number, bytes, tooLong };
    parts = [];
    kept = 0;
    tooLong = false;
    return line;
  };

  return {
    *push(chunk) {
      let start = 0;
      for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
        keep(chunk.subarray(start, nl));
        // A piece that fits is copied out of the chunk only when joined; a whole line is a view of it.
        yield take();
        start = nl + 1;
      }
      if (start < chunk.length) keep(Buffer.from(chunk.subarray(start)));
    },
    end() {
      return kept || tooLong ? take() : null;
    },
  };
}
