/**
 * The Range header of a GET (RFC 9110 §14.1–14.2), for one representation of `size` bytes:
 * - `ignore`: no header, another unit, a syntax error (`bytes=0-0-0`), an invalid range
 *   (last < first) or several ranges (we send no multipart) — the whole file, 200;
 * - `range`: one satisfiable range, clipped to the file (a suffix longer than the file selects
 *   all of it: `bytes=-5000` of 1 000 bytes is 0–999) — 206;
 * - `unsatisfiable`: 416 with `Content-Range: bytes *\/size`.
 */
export type RangeAnswer =
  | { readonly kind: 'ignore' }
  | { readonly kind: 'range'; readonly start: number; readonly end: number }
  | { readonly kind: 'unsatisfiable' };

type Spec = { readonly first: number; readonly last: number | undefined } | { readonly suffix: number };

const INT_RANGE = /^(\d{1,15})-(\d{0,15})$/;
const SUFFIX_RANGE = /^-(\d{1,15})$/;

/** The header's one range-spec, or undefined when it is to be ignored (syntax, validity, several ranges). */
export function parseRangeSpec(header: string | undefined): Spec | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!match) return undefined;
  const specs = match[1]!
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (specs.length !== 1) return undefined;
  const spec = specs[0]!;
  const suffix = SUFFIX_RANGE.exec(spec);
  if (suffix) return { suffix: Number(suffix[1]) };
  const int = INT_RANGE.exec(spec);
  if (!int) return undefined;
  const first = Number(int[1]);
  const last = int[2] === '' ? undefined : Number(int[2]);
  if (last !== undefined && last < first) return undefined; // invalid (§14.1.1): ignored
  return { first, last };
}

export function resolveRange(header: string | undefined, size: number): RangeAnswer {
  const spec = parseRangeSpec(header);
  if (!spec) return { kind: 'ignore' };
  if ('suffix' in spec) {
    if (spec.suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - spec.suffix), end: size - 1 };
  }
  if (spec.first >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', start: spec.first, end: Math.min(spec.last ?? size - 1, size - 1) };
}
