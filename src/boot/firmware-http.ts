/**
 * iPXE binaries over HTTP, for UEFI HTTP boot: the firmware is given a full URL by DHCP
 * (`<boot base>/ipxe.efi`, see dhcp-service.ts) and fetches it from the boot HTTP role. The same
 * names as the TFTP built-ins (Debian's ipxe package), from the same fixed paths.
 */
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { DEBIAN_IPXE_FILES } from '../protocols/tftp/files.ts';

/** The path a UEFI HTTP boot client is offered, relative to the boot base URL. */
export const HTTP_BOOT_IPXE_EFI = '/ipxe.efi';

/** One firmware download over HTTP, for the client's timeline (as TFTP transfers are). */
export interface FirmwareServed {
  readonly file: string;
  /** The client's address (the socket's: these routes are for firmware on the boot network). */
  readonly client: string;
  /** completed: every byte written; aborted: the connection closed first. */
  readonly outcome: 'completed' | 'aborted';
  readonly bytes: number;
}

export async function registerFirmwareRoutes(
  app: FastifyInstance,
  options: { files?: Readonly<Record<string, string>>; onServed?: (event: FirmwareServed) => void } = {},
): Promise<void> {
  for (const [name, path] of Object.entries(options.files ?? DEBIAN_IPXE_FILES)) {
    app.get(`/${name}`, async (request, reply) => {
      // Resolved per request: Debian's ipxe.efi is a symlink into /boot that a package upgrade replaces.
      const real = await realpath(path).catch(() => undefined);
      const info = real ? await stat(real).catch(() => undefined) : undefined;
      if (!real || !info?.isFile()) return reply.code(404).type('text/plain').send('not found\n');
      const onServed = options.onServed;
      if (onServed) {
        const told = (outcome: FirmwareServed['outcome']) =>
          onServed({
            file: name,
            client: request.socket.remoteAddress ?? '',
            outcome,
            bytes: outcome === 'completed' ? info.size : 0,
          });
        reply.raw.once('finish', () => told('completed'));
        reply.raw.once('close', () => reply.raw.writableFinished || told('aborted'));
      }
      return reply
        .type('application/efi')
        .header('content-length', info.size)
        .header('cache-control', 'max-age=300')
        .send(createReadStream(real));
    });
  }
}
