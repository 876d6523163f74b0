/**
 * The "installed disk" that the installer test double writes: the smallest disk both firmwares boot.
 * - BIOS: a 512-byte MBR whose boot code writes DISK_MARKER to COM1 and halts.
 * - UEFI: an EFI system partition (FAT, MBR type 0xEF) with \EFI\BOOT\BOOTX64.EFI, a GRUB image
 *   (grub-mkimage, Debian's grub-efi-amd64-bin) whose embedded config echoes DISK_MARKER; OVMF
 *   mirrors its console to the serial port.
 * A real install puts an OS there; the e2e only needs to see that the firmware booted the disk.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const DISK_MARKER = 'KVMFLEET-TEST-DISK: booted from the installed disk';

const SECTOR = 512;
const ESP_FIRST_SECTOR = 2048;
const ESP_KIB = 2048;

/** 16-bit real-mode code at 0x7C00: print the NUL-terminated string that follows on COM1 (0x3F8), then halt. */
function mbrBootCode(message: string): Buffer {
  const code = Buffer.from([
    0xfa, //                 cli
    0x31,
    0xc0, //           xor ax, ax
    0x8e,
    0xd8, //           mov ds, ax
    0xbe,
    0x16,
    0x7c, //     mov si, 0x7C16 (the message, 22 bytes in)
    0xba,
    0xf8,
    0x03, //     mov dx, 0x3F8
    0xac, //                 loop: lodsb
    0x84,
    0xc0, //           test al, al
    0x74,
    0x03, //           jz done
    0xee, //                 out dx, al
    0xeb,
    0xf8, //           jmp loop
    0xf4, //                 done: hlt
    0xeb,
    0xfd, //           jmp done
  ]);
  const text = Buffer.from(`\r\n${message} (bios)\r\n\0`, 'latin1');
  if (code.length + text.length > 440) throw new Error('MBR boot message too long');
  return Buffer.concat([code, text]);
}

function mbr(message: string, espSectors: number): Buffer {
  const sector = Buffer.alloc(SECTOR);
  mbrBootCode(message).copy(sector, 0);
  const entry = 446; // first partition entry
  sector.writeUInt8(0x80, entry); // active (BIOS does not care: our code is in the MBR itself)
  sector.set([0xfe, 0xff, 0xff], entry + 1); // CHS start: "use LBA"
  sector.writeUInt8(0xef, entry + 4); // EFI system partition
  sector.set([0xfe, 0xff, 0xff], entry + 5);
  sector.writeUInt32LE(ESP_FIRST_SECTOR, entry + 8);
  sector.writeUInt32LE(espSectors, entry + 12);
  sector.writeUInt16LE(0xaa55, 510);
  return sector;
}

/** Builds the disk image (about 3 MiB) with Debian's grub-mkimage, mkfs.vfat and mtools. */
export async function buildDiskImage(): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'kvt-disk-'));
  try {
    const cfg = join(dir, 'early.cfg');
    await writeFile(cfg, `echo "${DISK_MARKER} (uefi)"\nsleep 3600\n`);
    const efi = join(dir, 'BOOTX64.EFI');
    await run('grub-mkimage', ['-O', 'x86_64-efi', '-p', '/EFI/BOOT', '-c', cfg, '-o', efi, 'echo', 'sleep']);
    const esp = join(dir, 'esp.img');
    await run('mkfs.vfat', ['-C', esp, String(ESP_KIB)]);
    await run('mmd', ['-i', esp, '::/EFI', '::/EFI/BOOT']);
    await run('mcopy', ['-i', esp, efi, '::/EFI/BOOT/BOOTX64.EFI']);
    const espBytes = await readFile(esp);
    const gap = Buffer.alloc((ESP_FIRST_SECTOR - 1) * SECTOR);
    return Buffer.concat([mbr(DISK_MARKER, espBytes.length / SECTOR), gap, espBytes]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
