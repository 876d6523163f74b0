/** Prometheus text exposition of the counters each role keeps (served by the api role at /metrics). */
export interface Sample {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly values: readonly { labels?: Record<string, string>; value: number }[];
}

export type SampleSource = () => Sample[];

export class Metrics {
  readonly #sources: SampleSource[] = [];

  add(source: SampleSource): void {
    this.#sources.push(source);
  }

  render(): string {
    const lines: string[] = [];
    for (const sample of this.#sources.flatMap((s) => s())) {
      lines.push(`# HELP ${sample.name} ${sample.help}`, `# TYPE ${sample.name} ${sample.type}`);
      for (const { labels, value } of sample.values) {
        const text =
          labels && Object.keys(labels).length
            ? `{${Object.entries(labels)
                .map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`)
                .join(',')}}`
            : '';
        lines.push(`${sample.name}${text} ${value}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }
}
