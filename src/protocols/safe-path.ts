/**
 * A requested file name as a safe path relative to a served root, or why it is refused:
 * "..", absolute paths, NUL and control bytes never pass. DOS separators are read as "/" so
 * "..\\" is caught too (PXE firmware sometimes sends them).
 */
export type SafePath = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly detail: string };

export function safeRelativePath(name: string): SafePath {
  if (name.length === 0) return { ok: false, detail: 'empty file name' };
  if (/[\x00-\x1f\x7f]/.test(name)) return { ok: false, detail: 'control character in file name' };
  const path = name.replace(/\\/g, '/');
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) return { ok: false, detail: 'absolute path' };
  const segments = path.split('/');
  if (segments.some((s) => s === '..')) return { ok: false, detail: 'path leaves the served root' };
  const clean = segments.filter((s) => s !== '' && s !== '.').join('/');
  if (clean === '') return { ok: false, detail: 'empty file name' };
  return { ok: true, path: clean };
}
