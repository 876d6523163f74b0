/**
 * SQL literals for statements sent without parameters (the simple protocol: on the embedded store
 * one call into PGlite instead of five, see pglite-dialect.ts). Only for hot, fixed-shape
 * statements whose values are already checked; everything else binds parameters.
 */

/**
 * A text literal: quotes doubled and, if the text has a backslash, backslashes doubled in an E''
 * string, so it reads back the same whatever standard_conforming_strings says. NUL, which no
 * PostgreSQL text can hold, is refused.
 */
export function textLiteral(value: string): string {
  if (value.includes('\0')) throw new TypeError('a SQL text literal cannot hold a NUL character');
  const quoted = `'${value.replace(/'/g, "''")}'`;
  return value.includes('\\') ? `E${quoted.replace(/\\/g, '\\\\')}` : quoted;
}

/** An integer literal; anything but a safe integer is refused. */
export function integerLiteral(value: number): string {
  if (!Number.isSafeInteger(value)) throw new TypeError(`${String(value)} is not a safe integer`);
  return String(value);
}
