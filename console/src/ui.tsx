/** Small building blocks shared by the pages: data loading, permissions, bars, tables, errors. */
import { createContext, useCallback, useContext, useEffect, useRef, useState, type ReactNode } from 'react';
import { ApiError } from './api.ts';
import type { Permission, WhoAmI } from './types.ts';

export const WhoAmIContext = createContext<WhoAmI>({ user: null, role: null, permissions: [] });

/** Whether the signed-in user may do this (the API checks again; this only hides what would be refused). */
export function useCan(permission: Permission): boolean {
  return useContext(WhoAmIContext).permissions.includes(permission);
}

export interface Loaded<T> {
  readonly data: T | undefined;
  readonly error: string | undefined;
  readonly loading: boolean;
  /** Loads again; concurrent calls collapse into one. */
  reload(): void;
}

/** Loads `load()` on mount and whenever `deps` change; keeps the last data while reloading. */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: string | undefined; loading: boolean }>({
    data: undefined,
    error: undefined,
    loading: true,
  });
  const inFlight = useRef(false);
  const again = useRef(false);
  const loadRef = useRef(load);
  loadRef.current = load;
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => void (mounted.current = false);
  }, []);

  const reload = useCallback(() => {
    if (inFlight.current) {
      again.current = true;
      return;
    }
    inFlight.current = true;
    setState((s) => ({ ...s, loading: true }));
    void (async () => {
      do {
        again.current = false;
        try {
          const data = await loadRef.current();
          if (mounted.current) setState({ data, error: undefined, loading: false });
        } catch (error) {
          if (mounted.current) setState((s) => ({ ...s, error: describe(error), loading: false }));
        }
      } while (again.current && mounted.current);
      inFlight.current = false;
    })();
  }, []);
  // `deps` are the caller's: load again when they change (reload itself is stable).
  useEffect(reload, deps);
  return { ...state, reload };
}

/** Runs `fn` at most once per `ms` (trailing call kept): live events come in bursts during a storm. */
export function useThrottled(fn: () => void, ms: number): () => void {
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const latest = useRef(fn);
  latest.current = fn;
  useEffect(() => () => clearTimeout(timer.current), []);
  return useCallback(() => {
    if (timer.current !== undefined) return;
    timer.current = setTimeout(() => {
      timer.current = undefined;
      latest.current();
    }, ms);
  }, [ms]);
}

interface Problem {
  readonly field?: string;
  readonly message: string;
}

/** The API's details of a refusal, one line per problem (import rows by line, site items, host fields). */
function detailLines(details: unknown): string[] {
  const d = details as
    | {
        rows?: { line: number; hostname?: string; problems: Problem[] }[];
        items?: { item?: string; name?: string; problems?: Problem[] }[];
        problems?: Problem[];
      }
    | undefined;
  if (!d || typeof d !== 'object') return [];
  const lines: string[] = [];
  for (const row of d.rows ?? [])
    lines.push(
      `line ${row.line}${row.hostname ? ` (${row.hostname})` : ''}: ${row.problems.map((p) => p.message).join('; ')}`,
    );
  for (const item of d.items ?? [])
    lines.push(
      `${[item.item, item.name].filter(Boolean).join(' ')}: ${(item.problems ?? []).map((p) => p.message).join('; ')}`,
    );
  for (const problem of d.problems ?? []) lines.push(`${problem.field ? `${problem.field}: ` : ''}${problem.message}`);
  return lines;
}

export function describe(error: unknown): string {
  if (error instanceof ApiError) {
    const lines = detailLines(error.details);
    const head = error.status ? `${error.message} (${error.status})` : error.message;
    return lines.length
      ? `${head}\n${lines.slice(0, 20).join('\n')}${lines.length > 20 ? `\n… ${lines.length - 20} more` : ''}`
      : head;
  }
  return error instanceof Error ? error.message : String(error);
}

export function ErrorNote({ error }: { error: string | undefined }) {
  if (!error) return null;
  return (
    <p className="error" role="alert">
      {error}
    </p>
  );
}

/** A button that runs an async action, shows it is busy, and reports a failure beside it. */
export function ActionButton({
  label,
  action,
  disabled,
  danger,
  title,
}: {
  label: string;
  action: () => Promise<unknown>;
  disabled?: boolean;
  danger?: boolean;
  title?: string;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  return (
    <span className="action">
      <button
        type="button"
        className={danger ? 'danger' : undefined}
        disabled={busy || disabled}
        title={title}
        onClick={() => {
          setBusy(true);
          setError(undefined);
          action()
            .catch((e: unknown) => setError(describe(e)))
            .finally(() => setBusy(false));
        }}
      >
        {busy ? `${label}…` : label}
      </button>
      {error && (
        <span className="error inline" role="alert">
          {error}
        </span>
      )}
    </span>
  );
}

export function ProgressBar({
  done,
  failed = 0,
  total,
  label,
  text,
}: {
  done: number;
  failed?: number;
  total: number;
  label?: string;
  text?: string;
}) {
  const pct = (n: number) => (total > 0 ? (100 * n) / total : 0);
  return (
    <div
      className="bar"
      role="progressbar"
      aria-valuemin={0}
      aria-valuemax={total}
      aria-valuenow={done + failed}
      aria-label={label ?? 'progress'}
    >
      <span className="seg built" style={{ width: `${pct(done)}%` }} />
      <span className="seg failed" style={{ width: `${pct(failed)}%` }} />
      <span className="bar-text">{text ?? `${done + failed} / ${total}${failed ? ` (${failed} failed)` : ''}`}</span>
    </div>
  );
}

/** One bar split by state, in the order given; each part is labelled for screen readers and tests. */
export function StackedBar({ parts, total }: { parts: { key: string; count: number }[]; total: number }) {
  return (
    <div className="bar stacked">
      {parts.map((p) =>
        p.count > 0 ? (
          <span
            key={p.key}
            className={`seg ${p.key}`}
            style={{ width: `${total ? (100 * p.count) / total : 0}%` }}
            title={`${p.key}: ${p.count}`}
          />
        ) : null,
      )}
    </div>
  );
}

export function StateBadge({ state }: { state: string }) {
  return <span className={`badge ${state}`}>{state}</span>;
}

export function Time({ at }: { at: string | null | undefined }) {
  if (!at) return <span className="muted">—</span>;
  const date = new Date(at);
  return (
    <time dateTime={at} title={date.toISOString()}>
      {date.toLocaleString(undefined, { hour12: false })}
    </time>
  );
}

export function Section({ title, children, actions }: { title: string; children: ReactNode; actions?: ReactNode }) {
  return (
    <section>
      <header className="section-head">
        <h2>{title}</h2>
        {actions}
      </header>
      {children}
    </section>
  );
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v >= 10 || i === 0 ? 0 : 1)} ${units[i]}`;
}
