/** Medians with min/max over repeated runs, and the ratio table the bench prints. */
export interface Measure {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly runs: number[];
}

export function measure(runs: number[]): Measure {
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, runs };
}

export interface Row {
  readonly area: string;
  readonly metric: string;
  readonly unit: string;
  readonly kvmfleet: Measure;
  readonly peer: string;
  readonly peerValue: Measure;
  /** kvmfleet ÷ peer. */
  readonly ratio: number;
  /** Whether a lower value is better (times) or a higher one (rates). */
  readonly lowerIsBetter: boolean;
  readonly goal?: string;
  readonly note?: string;
}

/** A row of the table, its ratio taken from the two medians. */
export function compare(row: Omit<Row, 'ratio'>): Row {
  return { ...row, ratio: row.kvmfleet.median / row.peerValue.median };
}

const fmt = (m: Measure, digits = 2) =>
  `${m.median.toFixed(digits)} (${m.min.toFixed(digits)}–${m.max.toFixed(digits)})`;

export function markdownTable(rows: readonly Row[]): string {
  const lines = [
    '| area | metric | kvmfleet median (min–max) | peer | peer median (min–max) | ratio kvmfleet/peer | goal |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of rows)
    lines.push(
      `| ${r.area} | ${r.metric} [${r.unit}] | ${fmt(r.kvmfleet)} | ${r.peer} | ${fmt(r.peerValue)} | ${r.ratio < 0.1 ? r.ratio.toPrecision(2) : r.ratio.toFixed(2)}× | ${r.goal ?? ''} |`,
    );
  return lines.join('\n');
}
