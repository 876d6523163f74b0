/**
 * Reaching libvirtd by URI over each transport the client speaks — unix socket, TCP (through a
 * socat forwarder to the daemon's socket, so the same real daemon answers), SSH (a real sshd on
 * loopback running virt-ssh-helper or netcat on the far side) — and keepalive: PINGs when idle,
 * and a dead connection (the forwarder frozen with SIGSTOP) closed after the unanswered count.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { KeepaliveTimeoutError } from '../../../src/protocols/libvirt/connection.ts';
import { LibvirtClient } from '../../../src/protocols/libvirt/remote.ts';
import { ensureLibvirtd, LIBVIRT_SOCKET, startTcpForwarder } from '../../helpers/libvirtd.ts';
import { startSshd, type Sshd } from '../../helpers/sshd.ts';

const run = promisify(execFile);
let daemon: { stop(): Promise<void> };
let sshd: Sshd;

before(async () => {
  daemon = await ensureLibvirtd();
  sshd = await startSshd();
});
after(async () => {
  await sshd?.stop();
  await daemon?.stop();
});

test('unix: test:///default by URI', async () => {
  const client = await LibvirtClient.connect('test:///default');
  assert.equal(await client.getType(), 'TEST');
  await client.close();
  const explicit = await LibvirtClient.connect(`test+unix:///default?socket=${LIBVIRT_SOCKET}`);
  assert.equal(await explicit.getType(), 'TEST');
  await explicit.close();
  await assert.rejects(
    LibvirtClient.connect('test+unix:///default?socket=/nonexistent/sock'),
    /libvirt socket \/nonexistent\/sock: .*ENOENT/,
  );
});

test('tcp: the remote protocol over a TCP stream', async () => {
  const forwarder = await startTcpForwarder();
  try {
    const client = await LibvirtClient.connect(`test+tcp://127.0.0.1:${forwarder.port}/default`);
    assert.equal(await client.getType(), 'TEST');
    assert.equal((await client.nodeGetInfo()).cpus, 16);
    await client.close();
  } finally {
    await forwarder.stop();
  }
  await assert.rejects(LibvirtClient.connect(`test+tcp://127.0.0.1:${forwarder.port}/default`), /ECONNREFUSED/);
});

test('ssh: virt-ssh-helper and netcat on the far side; host keys checked against known_hosts', async () => {
  const base = `test+ssh://root@127.0.0.1:${sshd.port}/default?keyfile=${sshd.clientKey}&known_hosts=${sshd.knownHosts}`;
  for (const proxy of ['native', 'netcat', 'auto']) {
    const client = await LibvirtClient.connect(`${base}&proxy=${proxy}`);
    assert.equal(await client.getType(), 'TEST', proxy);
    assert.ok((await client.listAllDomains()).length >= 1, proxy);
    await client.close();
  }
  // An unknown host key is refused with the way out named; no_verify skips the check.
  const empty = `${sshd.dir}/empty_known_hosts`;
  await import('node:fs/promises').then((fs) => fs.writeFile(empty, ''));
  await assert.rejects(
    LibvirtClient.connect(
      `test+ssh://root@127.0.0.1:${sshd.port}/default?keyfile=${sshd.clientKey}&known_hosts=${empty}`,
    ),
    /host key of 127\.0\.0\.1:\d+ is not in .*empty_known_hosts \(add it with ssh-keyscan, or use \?no_verify=1\)/,
  );
  const unchecked = await LibvirtClient.connect(
    `test+ssh://root@127.0.0.1:${sshd.port}/default?keyfile=${sshd.clientKey}&known_hosts=${empty}&no_verify=1`,
  );
  assert.equal(await unchecked.getType(), 'TEST');
  await unchecked.close();
  // A key the server does not accept.
  await assert.rejects(
    LibvirtClient.connect(
      `test+ssh://root@127.0.0.1:${sshd.port}/default?keyfile=${sshd.dir}/host_key&known_hosts=${sshd.knownHosts}`,
    ),
    /authentication/i,
  );
});

test(
  'keepalive: PINGs after quiet intervals are answered; a frozen peer is declared dead',
  { timeout: 30_000 },
  async () => {
    const live = await LibvirtClient.connect('test:///default', { keepalive: { intervalMs: 100, count: 3 } });
    await new Promise((r) => setTimeout(r, 700));
    assert.ok(live.connection.keepalive.pingsSent >= 2, JSON.stringify(live.connection.keepalive));
    assert.ok(live.connection.keepalive.pongsReceived >= 2, JSON.stringify(live.connection.keepalive));
    assert.equal(live.connection.closed, false);
    assert.equal(await live.getType(), 'TEST');
    await live.close();

    const forwarder = await startTcpForwarder();
    try {
      const client = await LibvirtClient.connect(`test+tcp://127.0.0.1:${forwarder.port}/default`, {
        keepalive: { intervalMs: 200, count: 3 },
      });
      const closed = new Promise<Error | undefined>((r) => client.connection.once('close', r));
      // Freeze the forwarder and its per-connection child: the daemon is unreachable, the socket stays open.
      await run('pkill', ['-STOP', '-P', String(forwarder.child.pid)]);
      process.kill(forwarder.child.pid!, 'SIGSTOP');
      const started = Date.now();
      const pending = client.getType();
      const error = await closed;
      assert.ok(error instanceof KeepaliveTimeoutError, String(error));
      const took = Date.now() - started;
      assert.ok(took < 3000, `dead after ${took} ms (3 PINGs 200 ms apart)`);
      await assert.rejects(pending, KeepaliveTimeoutError);
      await run('pkill', ['-CONT', '-P', String(forwarder.child.pid)]);
    } finally {
      await forwarder.stop();
    }
  },
);
