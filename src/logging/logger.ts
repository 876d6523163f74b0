/**
 * A logger for the parts of kvmfleet that are not a Fastify app (the TFTP and DHCP roles, the
 * sweeps): the same pino Fastify uses, written the same way (JSON, or text on a terminal).
 */
import { pino, type Logger } from 'pino';
import { loggerOptions, type LoggerOptionsInput } from './options.ts';

export function createLogger(input: LoggerOptionsInput & { readonly name?: string }): Logger {
  const { level, stream } = loggerOptions(input);
  return pino({ level, ...(input.name ? { name: input.name } : {}) }, stream);
}
