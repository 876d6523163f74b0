/** libvirt URIs: pure functions, every case. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { daemonSocket, parseLibvirtUri, sshRemoteCommand } from '../../../src/protocols/libvirt/uri.ts';

const run = promisify(execFile);

test('URIs: local, unix with socket, tcp, ssh with user/port/params; the remote URI is driver:///path', () => {
  const local = parseLibvirtUri('qemu:///system');
  assert.deepEqual(
    [local.driver, local.transport, local.host, local.path, local.remoteUri],
    ['qemu', 'unix', undefined, '/system', 'qemu:///system'],
  );
  assert.equal(parseLibvirtUri('test:///default').remoteUri, 'test:///default');
  assert.equal(
    parseLibvirtUri('qemu+unix:///system?socket=/run/libvirt/virtqemud-sock').params.get('socket'),
    '/run/libvirt/virtqemud-sock',
  );
  const tcp = parseLibvirtUri('qemu+tcp://hv1.example.com:16600/system');
  assert.deepEqual(
    [tcp.transport, tcp.host, tcp.port, tcp.remoteUri],
    ['tcp', 'hv1.example.com', 16600, 'qemu:///system'],
  );
  const ssh = parseLibvirtUri(
    'qemu+ssh://root@hv1.dc1.example.com/system?keyfile=/etc/kvmfleet/id_ed25519&no_verify=1',
  );
  assert.deepEqual(
    [ssh.transport, ssh.user, ssh.host, ssh.port, ssh.params.get('keyfile'), ssh.params.get('no_verify')],
    ['ssh', 'root', 'hv1.dc1.example.com', undefined, '/etc/kvmfleet/id_ed25519', '1'],
  );
  assert.equal(parseLibvirtUri('qemu+libssh2://admin@[2001:db8::5]:2222/system').host, '2001:db8::5');
});

test("daemon socket: ?socket=, else libvirtd's, else the driver's modular daemon", () => {
  const none = () => false;
  assert.equal(
    daemonSocket(parseLibvirtUri('qemu:///system'), () => true),
    '/var/run/libvirt/libvirt-sock',
  );
  assert.equal(daemonSocket(parseLibvirtUri('qemu:///system'), none), '/var/run/libvirt/virtqemud-sock');
  assert.equal(daemonSocket(parseLibvirtUri('lxc:///system'), none), '/var/run/libvirt/virtlxcd-sock');
  assert.equal(daemonSocket(parseLibvirtUri('qemu:///system?socket=/x/sock'), none), '/x/sock');
  assert.equal(
    daemonSocket(parseLibvirtUri('qemu+ssh://hv1/system'), none),
    '/var/run/libvirt/libvirt-sock',
    'the far side is not probed',
  );
});

test('URIs that cannot work are refused with the reason', () => {
  const refused = (uri: string, why: RegExp) => assert.throws(() => parseLibvirtUri(uri), why);
  refused('qemu', /expected driver\[\+transport\]/);
  refused('qemu://hv1/system', /needs a transport kvmfleet speaks: \+ssh or \+tcp \(TLS is not supported\)/);
  refused('qemu+tls://hv1/system', /transport "tls" is not supported/);
  refused('qemu+ssh:///system', /\+ssh needs a host/);
  refused('qemu+unix://hv1/system', /needs a transport|has no host/);
  refused('qemu:///', /names no path/);
  refused('qemu:///system?bogus=1', /unknown parameter "bogus"/);
  refused('QEMU+x+y:///system', /is not driver or driver\+transport/);
});

test('the far side of SSH: virt-ssh-helper when present, else netcat on the socket; quoted', async () => {
  const uri = parseLibvirtUri("qemu+ssh://root@hv1/system?socket=/run/it's/sock");
  assert.equal(
    sshRemoteCommand(parseLibvirtUri('qemu+ssh://hv1/system?proxy=native')),
    "virt-ssh-helper 'qemu:///system'",
  );
  assert.equal(
    sshRemoteCommand(parseLibvirtUri('qemu+ssh://hv1/system?proxy=netcat')),
    "'nc' -U '/var/run/libvirt/libvirt-sock'",
  );
  assert.match(sshRemoteCommand(uri), /^sh -c '.*command -v virt-ssh-helper.*'$/);
  // Run it through a real shell, with a netcat that prints its arguments and no virt-ssh-helper on PATH.
  const dir = await mkdtemp(join(tmpdir(), 'kvt-nc-'));
  try {
    await symlink('/bin/sh', join(dir, 'sh'));
    await writeFile(join(dir, 'nc'), '#!/bin/sh\nfor a in "$@"; do echo "[$a]"; done\n', { mode: 0o755 });
    const { stdout } = await run('/bin/sh', ['-c', sshRemoteCommand(uri)], { env: { PATH: dir } });
    assert.equal(stdout, "[-U]\n[/run/it's/sock]\n", 'the socket path arrives whole through both shells');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
