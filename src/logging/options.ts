/**
 * How kvmfleet's loggers write: JSON lines (as always) when the output is a file, a pipe or the
 * journal; one readable line per event (terminal.ts) when a person is watching a terminal.
 * KVMFLEET_LOG_FORMAT=json|text overrides the guess. The result is Fastify's `logger` option
 * (and pino's), so the serializers and redaction of each role still run first.
 */
import { ErrorCode, KvmfleetError } from '../errors.ts';
import { TerminalLogStream } from './terminal.ts';

export type LogFormat = 'json' | 'text';

export interface LoggerOptionsInput {
  readonly level: string;
  /** Where lines go (default process.stdout); its `isTTY` decides the format. */
  readonly stream?: NodeJS.WritableStream & { readonly isTTY?: boolean };
  /** Environment read for KVMFLEET_LOG_FORMAT and NO_COLOR (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export interface LoggerOptions {
  readonly level: string;
  readonly stream: NodeJS.WritableStream;
}

/** json or text: KVMFLEET_LOG_FORMAT if set, else text exactly when the stream is a terminal. */
export function logFormat(
  stream: { readonly isTTY?: boolean },
  env: Readonly<Record<string, string | undefined>> = process.env,
): LogFormat {
  const chosen = env.KVMFLEET_LOG_FORMAT;
  if (chosen === undefined || chosen === '') return stream.isTTY ? 'text' : 'json';
  if (chosen === 'json' || chosen === 'text') return chosen;
  throw new KvmfleetError(
    ErrorCode.Validation,
    `KVMFLEET_LOG_FORMAT must be json or text, not ${JSON.stringify(chosen.slice(0, 40))}`,
  );
}

/** Colours only on a terminal, and never when NO_COLOR is set to anything (no-color.org). */
export function useColor(
  stream: { readonly isTTY?: boolean },
  env: Readonly<Record<string, string | undefined>> = process.env,
): boolean {
  return stream.isTTY === true && !env.NO_COLOR;
}

/** Fastify's/pino's logger options: the stream as it is for JSON, wrapped in a TerminalLogStream for text. */
export function loggerOptions(input: LoggerOptionsInput): LoggerOptions {
  const stream = input.stream ?? process.stdout;
  const env = input.env ?? process.env;
  if (logFormat(stream, env) === 'json') return { level: input.level, stream };
  return { level: input.level, stream: new TerminalLogStream(stream, { color: useColor(stream, env) }) };
}
