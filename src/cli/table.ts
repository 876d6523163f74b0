/** Plain text tables for the CLI: column widths from the data, nulls as "-". */
export type Cell = string | number | boolean | null | undefined | readonly string[];

function show(cell: Cell): string {
  if (cell === null || cell === undefined || cell === '') return '-';
  if (Array.isArray(cell)) return cell.length ? cell.join(',') : '-';
  return String(cell);
}

export function formatTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = rows.map((row) => row.map(show));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(headers.map((h) => h.toUpperCase())), ...text.map(line)].join('\n');
}

/** key: value lines for one record. */
export function formatRecord(record: Record<string, Cell | object>): string {
  const width = Math.max(...Object.keys(record).map((k) => k.length));
  return Object.entries(record)
    .map(
      ([k, v]) =>
        `${k.padEnd(width)}  ${v !== null && typeof v === 'object' && !Array.isArray(v) ? JSON.stringify(v) : show(v as Cell)}`,
    )
    .join('\n');
}
