/**
 * TLS for the API and console: the certificate and key are read from files at start, and again on
 * SIGHUP (a renewed certificate takes effect for new connections without a restart).
 */
import { readFileSync } from 'node:fs';
import type { Http2SecureServer } from 'node:http2';
import type { Server as HttpsServer } from 'node:https';

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
}

export function readTls(files: TlsFiles): TlsMaterial {
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new Error(
        `cannot read the TLS ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
  };
  return { cert: read(files.certFile, 'certificate'), key: read(files.keyFile, 'key') };
}

/** Reloads the files into the running server on SIGHUP; returns a function that stops doing so. */
export function reloadOnSighup(
  server: HttpsServer | Http2SecureServer,
  files: TlsFiles,
  log: (message: string) => void,
): () => void {
  const reload = () => {
    try {
      server.setSecureContext(readTls(files));
      log(`TLS certificate reloaded from ${files.certFile}`);
    } catch (error) {
      log(`TLS reload failed, keeping the current certificate: ${(error as Error).message}`);
    }
  };
  process.on('SIGHUP', reload);
  return () => process.off('SIGHUP', reload);
}
