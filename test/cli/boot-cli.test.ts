/** Operators' view of the boot service through the real binary: previews, rebuild, timeline, queue. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkKickstart } from '../helpers/kickstart-check.ts';
import { httpFrom } from '../helpers/raw-http.ts';
import { runCli, startServer, type ServerProcess } from '../helpers/server.ts';

describe('boot verbs of the CLI against api+http roles', () => {
  const work = mkdtempSync(join(tmpdir(), 'kvt-bootcli-'));
  let server: ServerProcess;
  const ok = async (...args: string[]) => {
    const result = await runCli(server.url, args);
    assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  };
  before(async () => {
    const data = join(work, 'data');
    mkdirSync(join(data, 'templates', 'kickstart'), { recursive: true });
    writeFileSync(join(data, 'templates', 'kickstart', 'broken.ks.hbs'), 'network --ip={{host.address}}\n');
    server = await startServer([
      '--roles',
      'api,http',
      '--data-dir',
      data,
      '--http-listen',
      '127.0.0.1:0',
      '--log-level',
      'warn',
    ]);
    writeFileSync(
      join(work, 'site.yaml'),
      'sites:\n  - name: dc1\n    buildCap: 1\n    networks:\n      - { name: dc1-hv, cidr: 127.1.0.0/24, gateway: 127.1.0.1, dns: [127.1.0.10], domain: dc1.example.com }\nprofiles:\n  - { name: rhel9-kvm, os: rhel9, installTreeUrl: "http://boot/trees/rhel9" }\n  - { name: broken, os: rhel9, installTreeUrl: "http://boot/trees/rhel9", kickstartTemplate: broken }\n',
    );
    await ok('import', join(work, 'site.yaml'));
    await ok(
      'host',
      'add',
      'hv1',
      '--mac',
      '52:54:00:00:10:01',
      '--ip',
      '127.1.0.21',
      '--network',
      'dc1-hv',
      '--profile',
      'rhel9-kvm',
    );
    await ok(
      'host',
      'add',
      'hv2',
      '--mac',
      '52:54:00:00:10:02',
      '--ip',
      '127.1.0.22',
      '--network',
      'dc1-hv',
      '--profile',
      'rhel9-kvm',
    );
    await ok(
      'host',
      'add',
      'hv3',
      '--mac',
      '52:54:00:00:10:03',
      '--ip',
      '127.1.0.23',
      '--network',
      'dc1-hv',
      '--profile',
      'broken',
    );
  });
  after(async () => {
    await server?.kill();
    rmSync(work, { recursive: true, force: true });
  });

  test('boot show prints the script the host would get, with no side effect', async () => {
    const script = await ok('boot', 'show', 'hv1', '--platform', 'pcbios');
    assert.match(script, /^#!ipxe\n/);
    assert.match(script, /inst\.ks=http:\/\/127\.0\.0\.1:\d+\/boot\/ks\/PREVIEW-TOKEN-NOT-VALID/);
    assert.equal(JSON.parse(await ok('--json', 'host', 'show', 'hv1')).buildState, 'ready', 'a preview admits nobody');
  });

  test('kickstart render prints a valid RHEL 9 Kickstart; a failing template exits non-zero with the reason', async () => {
    const text = await ok('kickstart', 'render', 'hv1');
    assert.deepEqual(checkKickstart(text, 9).problems, []);
    const broken = await runCli(server.url, ['kickstart', 'render', 'hv3']);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /Kickstart template "broken" failed: .*address/);
    assert.equal(broken.stdout, '');
  });

  test('a machine builds through the boot role; timeline, queue and rebuild show it', async () => {
    // Each machine asks from its reserved address (127.1.0.x is local on loopback): a MAC alone gets no install.
    const script = (await httpFrom('127.1.0.21', `${server.bootUrl}/boot/52-54-00-00-10-01?platform=efi`)).body;
    const token = /\/boot\/ks\/([\w-]+)/.exec(script)![1]!;
    const queued = (await httpFrom('127.1.0.22', `${server.bootUrl}/boot/52-54-00-00-10-02?platform=efi`)).body;
    assert.match(queued, /number 1 in the queue/, 'cap 1: the second machine waits');
    assert.match(
      await ok('site', 'builds', 'dc1'),
      /1 of 1 building, 1 queued[\s\S]*building\s+hv1[\s\S]*queued\s+hv2\s+1/,
    );
    assert.equal((await fetch(`${server.bootUrl}/boot/ks/${token}`)).status, 200);
    assert.equal((await fetch(`${server.bootUrl}/boot/built/${token}`, { method: 'POST' })).status, 200);
    const timeline = await ok('host', 'timeline', 'hv1');
    for (const kind of ['build-started', 'script', 'kickstart', 'built'])
      assert.match(timeline, new RegExp(`\\s${kind}\\s*`), kind);
    assert.match(await ok('host', 'list', '--state', 'built'), /^hv1\s/m);
    await ok('host', 'rebuild', 'hv1');
    assert.equal(JSON.parse(await ok('--json', 'host', 'show', 'hv1')).buildState, 'ready');
    const missing = await runCli(server.url, ['host', 'rebuild', 'nope']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /KVMF_ERR_NOT_FOUND/);
  });

  test('a discovered machine is found by its MAC and adopted from the CLI', async () => {
    // An unknown MAC asks for its script: registered as discovered (no network: it came over loopback).
    assert.match(
      await (await fetch(`${server.bootUrl}/boot/52-54-00-00-10-99?platform=efi`)).text(),
      /waiting to be adopted/,
    );
    assert.match(await ok('host', 'list', '--find', '00:10:99'), /^discovered-525400001099\s/m);
    assert.match(await ok('host', 'list', '--find', 'HV', '--limit', '2'), /^hv1\s[\s\S]*^hv2\s/m);
    assert.doesNotMatch(await ok('host', 'list', '--find', 'hv', '--limit', '2'), /^hv3\s/m);
    const noNetwork = await runCli(server.url, [
      'host',
      'adopt',
      'discovered-525400001099',
      '--hostname',
      'hv4',
      '--profile',
      'rhel9-kvm',
    ]);
    assert.equal(noNetwork.code, 1);
    assert.match(noNetwork.stderr, /was not seen on a known network: name the network/);
    const adopted = await ok(
      'host',
      'adopt',
      'discovered-525400001099',
      '--hostname',
      'hv4',
      '--profile',
      'rhel9-kvm',
      '--network',
      'dc1-hv',
      '--ip',
      '127.1.0.24',
    );
    assert.match(adopted, /discovered-525400001099 adopted as hv4 \(127\.1\.0\.24, dc1-hv, rhel9-kvm\): ready/);
    assert.match(await ok('host', 'timeline', 'hv4'), /discovered[\s\S]*adopted/);
  });
});
