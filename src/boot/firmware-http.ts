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

export async function registerFirmwareRoutes(app: FastifyInstance, files: Readonly<Record<string, string>> = DEBIAN_IPXE_FILES): Promise<void> {
  for (const [name, path] of Object.entries(files)) {
    app.get(`/${name}`, async (_request, reply) => {
      // Resolved per request: Debian's ipxe.efi is a symlink into /boot that a package upgrade replaces.
      const real = await realpath(path).catch(() => undefined);
      const info = real ? await stat(real).catch(() => undefined) : undefined;
      if (!real || !info?.isFile()) return reply.code(404).type('text/plain').send('not found\n');
      return reply.type('application/efi').header('content-length', info.size).header('cache-control', 'max-age=300').send(createReadStream(real));
    });
  }
}
