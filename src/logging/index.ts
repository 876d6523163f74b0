/**
 * kvmfleet's log output: how lines are written (options.ts, terminal.ts) and the boot roles'
 * summaries (boot-summary.ts, boot-http.ts, boot-kinds.ts).
 */
export {
  logFormat,
  loggerOptions,
  useColor,
  type LogFormat,
  type LoggerOptions,
  type LoggerOptionsInput,
} from './options.ts';
export { createLogger } from './logger.ts';
export { summarizeBootHttp, type BootHttpSummaryOptions } from './boot-http.ts';
export { BootSummary, groupDigits, type BootEvent, type BootSummaryOptions, type SummaryLog } from './boot-summary.ts';
export { formatLine, formatRecord, TerminalLogStream, type TerminalFormatOptions } from './terminal.ts';
export { bootHttpKind, dhcpReplyIsOk, dhcpTypeName, tftpKind } from './boot-kinds.ts';
