/**
 * The last resort for errors that nothing handled. One process runs DHCP, TFTP, boot HTTP, the API
 * and the worker, so a network peer that resets a connection whose 'error' event nobody listened
 * to must not stop all of them: such errors (a socket's, by their system error code) are logged
 * with their context and the process goes on — the one connection is lost, nothing else. Any other
 * error is a bug after which the process's state cannot be trusted: it is logged, and the process
 * exits with status 1 so that its supervisor (deploy/systemd/kvmfleet.service: Restart=on-failure)
 * starts it again.
 */

/** Codes of errors that concern one connection only. */
const CONNECTION_ERRORS = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_SOCKET_CLOSED',
]);

export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CONNECTION_ERRORS.has(code);
}

export interface GuardLog {
  (level: 'warn' | 'fatal', message: string, detail: Record<string, unknown>): void;
}

const defaultLog: GuardLog = (level, message, detail) =>
  console.error(JSON.stringify({ level, time: new Date().toISOString(), msg: message, ...detail }));

/** Installs the handlers once per process; returns a function that removes them (tests). */
export function installProcessGuard(
  log: GuardLog = defaultLog,
  exit: (code: number) => void = (code) => process.exit(code),
): () => void {
  const handle = (origin: 'uncaughtException' | 'unhandledRejection') => (reason: unknown) => {
    const error = reason instanceof Error ? reason : new Error(String(reason));
    const detail = {
      origin,
      error: error.message,
      code: (error as { code?: unknown }).code,
      stack: error.stack?.split('\n').slice(0, 6).join('\n'),
    };
    if (isConnectionError(error))
      return log(
        'warn',
        'a connection failed and nothing handled its error: that connection is lost, the roles go on',
        detail,
      );
    log('fatal', 'unexpected error: exiting so that the supervisor restarts kvmfleet', detail);
    exit(1);
  };
  const onException = handle('uncaughtException');
  const onRejection = handle('unhandledRejection');
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  };
}
