/**
 * Debian's chromium driven by playwright-core (Playwright's own browser downloads are not used:
 * the browser is a Debian package like every other tool of the tests). With `netns`, the browser
 * runs inside that network namespace, so it reaches a server listening on the namespace's loopback.
 */
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

// Headless, no sandbox (tests run as root), and nothing that would reach for the network on its own.
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** `args`: more command-line flags (e.g. one certificate trusted by its SPKI hash). */
export async function launchChromium(options: { netns?: string; args?: string[] } = {}): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (the console tests need it)`);
  let executablePath = CHROMIUM;
  if (options.netns) {
    // Playwright talks to the browser over inherited pipes, which `ip netns exec` passes through.
    const dir = await mkdtemp(join(tmpdir(), 'kvt-chromium-'));
    executablePath = join(dir, 'chromium-in-netns');
    await writeFile(executablePath, `#!/bin/sh\nexec ip netns exec ${options.netns} ${CHROMIUM} "$@"\n`);
    await chmod(executablePath, 0o755);
  }
  return chromium.launch({ executablePath, args: [...FLAGS, ...(options.args ?? [])], timeout: 60_000 });
}
