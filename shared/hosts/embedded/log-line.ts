// One log line is one line: whatever an id or an error message carries (CR, LF, other control characters, the
// Unicode line separators), the embedded server's stderr gets it escaped, so that nobody can forge a log line
// by naming a patient, a message or a page "x\r\ncrs serve: ...". Format characters are escaped too: a bidirectional
// override would reorder the rest of the line on the operator's terminal, a zero-width space would hide in it. Ids
// also go through wireId where they are written.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\p{Cf}]/gu;

export function oneLine(text: string): string {
  return text.replace(CONTROL, (c) => {
    const code = c.codePointAt(0)!;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
