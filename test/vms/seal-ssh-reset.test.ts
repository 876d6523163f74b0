/**
 * A hypervisor that resets its SSH connection while virt-sysprep runs over it: the seal fails with
 * the reason and this process goes on (before the fix the socket's 'error' had no listener once the
 * session was up, and ended the process). A real sshd (test/helpers/sshd.ts) runs, for this key,
 * a command that stands in for a long virt-sysprep (it prints until its connection is gone); a TCP
 * relay between the two is reset (RST) once that command is running.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { parseLibvirtUri } from '../../src/protocols/libvirt/uri.ts';
import { sysprepDisk } from '../../src/vms/sysprep.ts';
import { startSshd, type Sshd } from '../helpers/sshd.ts';

const run = promisify(execFile);
const MARK = `kvt-seal-reset-${process.pid}`;
let sshd: Sshd;

before(async () => {
  sshd = await startSshd();
  // Whatever command the client asks for, this key runs the stand-in (sshd reads the file per login).
  const key = await readFile(sshd.clientKey + '.pub', 'utf8');
  await writeFile(join(sshd.dir, 'authorized_keys'), `command="while :; do echo ${MARK}; sleep 0.2; done" ${key}`);
});
after(() => sshd.stop());

const running = async () =>
  (await run('pgrep', ['-f', `echo ${MARK}`]).then(
    (r) => r.stdout.trim(),
    () => '',
  )) !== '';

test(
  'an SSH connection reset during template seal fails the seal with the reason; the process lives on',
  { timeout: 30_000 },
  async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    const sockets: Socket[] = [];
    const relay = createServer((client) => {
      const server = createConnection({ host: '127.0.0.1', port: sshd.port });
      sockets.push(client, server);
      client.pipe(server).pipe(client);
      client.on('error', () => {});
      server.on('error', () => {});
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    const port = (relay.address() as { port: number }).port;
    try {
      // The host key as the relay's address (known_hosts entries name a port).
      const knownHosts = join(sshd.dir, 'relay_known_hosts');
      await writeFile(
        knownHosts,
        (await readFile(sshd.knownHosts, 'utf8')).replace(/^\[127\.0\.0\.1\]:\d+/, `[127.0.0.1]:${port}`),
      );
      const uri = parseLibvirtUri(
        `qemu+ssh://root@127.0.0.1:${port}/system?keyfile=${sshd.clientKey}&known_hosts=${knownHosts}`,
      );
      const seal = sysprepDisk(uri, '/var/lib/libvirt/images/kvt-none.qcow2', { tcg: true });
      const outcome = seal.then(
        () => 'sealed',
        (error: Error) => `${error.name}: ${error.message}`,
      );
      const deadline = Date.now() + 10_000;
      while (!(await running())) {
        assert.ok(Date.now() < deadline, 'the stand-in never ran');
        await new Promise((r) => setTimeout(r, 50));
      }
      for (const socket of sockets) socket.resetAndDestroy();
      const message = await outcome;
      assert.match(
        message,
        /^HypervisorLostError: SSH to 127\.0\.0\.1 (failed during virt-sysprep: .*ECONNRESET|closed before virt-sysprep finished)/,
        message,
      );
      await new Promise((r) => setTimeout(r, 200)); // an 'error' emitted after the rejection would show up now
      assert.deepEqual(uncaught, [], 'no error escaped to the process');
      // The far side notices too: the stand-in ends with its connection.
      const gone = Date.now() + 10_000;
      while (await running()) {
        assert.ok(Date.now() < gone, 'the remote command outlived its connection');
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      process.off('uncaughtException', onUncaught);
      relay.close();
      for (const socket of sockets) socket.destroy();
    }
  },
);
