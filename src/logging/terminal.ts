/**
 * Pino's JSON lines as one readable line each, for a person at a terminal:
 *
 *   12:04:31.207 INFO  [http] request completed GET /boot/ks/[redacted] → 200 in 3.1 ms host=boot.lab reqId=req-7
 *
 * This stream sits where pino writes, so it sees each line after pino's serializers and redaction
 * (the boot role's token-free URLs, src/boot/log-redact.ts): it formats what JSON mode would have
 * written, never the objects before them. Every field of the line is shown — none is dropped to
 * make a line short; long values are cut with the number of characters left out. Strings from the
 * network (URLs, host names, messages) may hold control characters: they are escaped, so a log line
 * can never move the cursor or recolour the terminal. A line that is not JSON is passed through
 * (escaped) rather than lost.
 */
import { Writable } from 'node:stream';

export interface TerminalFormatOptions {
  /** ANSI colours (only for a TTY with NO_COLOR unset: see index.ts). */
  readonly color?: boolean;
}

/** Fields shown in fixed places of the line rather than as key=value. */
const PLACED = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'role', 'component', 'reqId', 'v']);
/** Longest value shown whole; the rest is cut, saying how much was. */
const MAX_VALUE = 300;

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const LEVEL_COLOR: Record<string, string> = {
  TRACE: '90',
  DEBUG: '36',
  INFO: '32',
  WARN: '33',
  ERROR: '31',
  FATAL: '1;31',
};

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Record_ = { [key: string]: Json };

/** C0 and C1 controls and DEL, as visible escapes (C1 0x9b alone is a CSI on many terminals). */
function escapeControls(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function cut(text: string): string {
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE)}…(${text.length - MAX_VALUE} more chars)` : text;
}

/** A value after `key=`: bare when it cannot be misread, else quoted JSON. */
function renderValue(value: Json | undefined): string {
  if (typeof value === 'string')
    return escapeControls(cut(/^[^\s"'=\\]+$/.test(value) ? value : JSON.stringify(value)));
  return escapeControls(cut(JSON.stringify(value) ?? 'undefined'));
}

function isRecord(value: Json | undefined): value is Record_ {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function levelName(level: Json | undefined): string {
  if (typeof level === 'number') return LEVELS[level] ?? `L${level}`;
  if (typeof level === 'string') return escapeControls(level.toUpperCase().slice(0, 5));
  return '?';
}

function clock(time: Json | undefined): string {
  const date = typeof time === 'number' || typeof time === 'string' ? new Date(time) : new Date(NaN);
  if (Number.isNaN(date.getTime())) return '--:--:--.---';
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}

/** An error as one line: type, message, code, and where it was thrown (the stack's first frame). */
function renderError(err: Record_): string[] {
  const head = `${typeof err.type === 'string' ? `${err.type}: ` : ''}${typeof err.message === 'string' ? err.message : ''}`;
  const frame = typeof err.stack === 'string' ? /\n\s*at (.+)/.exec(err.stack)?.[1] : undefined;
  const parts = [`err=${renderValue(`${head}${frame ? ` (at ${frame})` : ''}`)}`];
  for (const [key, value] of Object.entries(err)) {
    if (key === 'type' || key === 'message' || key === 'stack') continue;
    parts.push(`err.${escapeControls(key)}=${renderValue(value)}`);
  }
  return parts;
}

/** One formatted line (no newline) from one parsed pino record. */
export function formatRecord(record: Record_, options: TerminalFormatOptions = {}): string {
  const paint = (code: string, text: string) => (options.color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const level = levelName(record.level);
  const words: string[] = [paint('2', clock(record.time)), paint(LEVEL_COLOR[level] ?? '0', level.padEnd(5))];
  const role = record.role ?? record.component ?? record.name;
  if (role !== undefined) words.push(`[${escapeControls(String(role))}]`);
  if (record.msg !== undefined)
    words.push(escapeControls(typeof record.msg === 'string' ? record.msg : JSON.stringify(record.msg)));

  const fields: string[] = [];
  const named = (key: string, value: Json | undefined) =>
    fields.push(`${paint('2', `${escapeControls(key)}=`)}${renderValue(value)}`);
  for (const [key, value] of Object.entries(record)) {
    if (PLACED.has(key)) continue;
    if (key === 'req' && isRecord(value)) {
      // Fastify's request: "GET /url", then what else its serializer wrote.
      const { method, url, ...rest } = value;
      if (method !== undefined || url !== undefined)
        words.push(
          escapeControls(
            cut(
              [method, url]
                .filter((p) => p !== undefined)
                .map(String)
                .join(' '),
            ),
          ),
        );
      for (const [k, v] of Object.entries(rest)) named(k, v);
    } else if (key === 'res' && isRecord(value) && typeof value.statusCode === 'number') {
      const { statusCode, ...rest } = value;
      const status = String(statusCode);
      words.push(`→ ${paint(statusCode >= 500 ? '31' : statusCode >= 400 ? '33' : '0', status)}`);
      for (const [k, v] of Object.entries(rest)) named(`res.${k}`, v);
    } else if (key === 'responseTime' && typeof value === 'number') {
      words.push(`in ${value < 10 ? value.toFixed(1) : Math.round(value)} ms`);
    } else if (key === 'err' && isRecord(value)) {
      fields.push(...renderError(value).map((part) => paint('31', part)));
    } else {
      named(key, value);
    }
  }
  if (record.reqId !== undefined) named('reqId', record.reqId);
  return [...words, ...fields].join(' ');
}

/** One formatted line from one line of pino output; a line that is not a JSON object is kept as it is. */
export function formatLine(line: string, options: TerminalFormatOptions = {}): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return escapeControls(line);
  }
  return isRecord(parsed as Json) ? formatRecord(parsed as Record_, options) : escapeControls(line);
}

/** Longest partial line kept while waiting for its newline (pino writes whole lines; this bounds a stray writer). */
const MAX_PENDING = 1024 * 1024;

/**
 * A writable stream for pino (`pino(options, stream)`, Fastify's `logger.stream`) that writes each
 * record to `out` as one readable line.
 */
export class TerminalLogStream extends Writable {
  #pending = '';

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly format: TerminalFormatOptions = {},
  ) {
    super({ decodeStrings: false });
  }

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    const text = this.#pending + (typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
    const lines = text.split('\n');
    this.#pending = lines.pop() ?? '';
    if (this.#pending.length > MAX_PENDING) {
      lines.push(this.#pending);
      this.#pending = '';
    }
    this.#emit(lines, done);
  }

  override _final(done: (error?: Error | null) => void): void {
    const rest = this.#pending;
    this.#pending = '';
    this.#emit(rest ? [rest] : [], done);
  }

  #emit(lines: string[], done: (error?: Error | null) => void): void {
    const text = lines
      .filter((line) => line.trim() !== '')
      .map((line) => `${formatLine(line, this.format)}\n`)
      .join('');
    if (!text || this.out.write(text)) return done();
    // The terminal is slower than the log: take the next record only once it has drained (pino itself does not wait).
    this.out.once('drain', () => done());
  }
}
