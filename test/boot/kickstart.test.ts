import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { KickstartTemplates, kickstartContext } from '../../src/boot/kickstart.ts';
import type { Host, Network, Profile, Site } from '../../src/fleet/model.ts';
import { checkKickstart, optionsOf } from '../helpers/kickstart-check.ts';

const network: Network = {
  name: 'dc1-hv',
  site: 'dc1',
  cidr: '10.1.0.0/22',
  gateway: '10.1.0.1',
  dns: ['10.1.0.10', '10.1.0.11'],
  domain: 'dc1.example.com',
  dynamicRange: null,
  relays: [],
  vlan: null,
  leaseSeconds: 86400,
};
const site: Site = { name: 'dc1', description: '', buildCap: 10 };
const host: Host = {
  hostname: 'hv0001',
  macs: ['52:54:00:aa:bb:01'],
  ip: '10.1.0.20',
  network: 'dc1-hv',
  site: 'dc1',
  profile: 'p',
  smbiosUuid: null,
  bmc: null,
  buildState: 'building',
  stateChangedAt: '',
};
const profile = (os: string): Profile => ({
  name: `${os}-kvm`,
  os,
  arch: 'x86_64',
  installTreeUrl: `http://boot/trees/${os}`,
  kernelPath: 'images/pxeboot/vmlinuz',
  initrdPath: 'images/pxeboot/initrd.img',
  kickstartTemplate: os === 'rhel6' ? 'rhel6-kvm' : 'rhel-kvm',
  packages: ['tuned', 'lldpad'],
  kernelArgs: '',
  hasRootPassword: true,
});
const urls = { built: 'http://boot/boot/built/TOKEN123', kickstart: 'http://boot/boot/ks/TOKEN123' };
const templates = new KickstartTemplates();
const render = (os: string, h: Host = host) =>
  templates.render(
    profile(os).kickstartTemplate,
    kickstartContext({ host: h, network, site, profile: profile(os), rootPasswordHash: '$6$salt$hash', urls }),
  );

for (const [os, release] of [
  ['rhel8', 8],
  ['rhel9', 9],
] as const) {
  test(`default Kickstart for ${os} passes the structural check and matches the inventory`, () => {
    const text = render(os);
    const { problems, commands } = checkKickstart(text, release);
    assert.deepEqual(problems, []);
    const net = optionsOf(commands.get('network')![0]!);
    assert.deepEqual(
      Object.fromEntries(
        ['bootproto', 'device', 'ip', 'netmask', 'gateway', 'nameserver', 'hostname'].map((k) => [k, net.get(k)]),
      ),
      {
        bootproto: 'static',
        device: '52:54:00:aa:bb:01',
        ip: '10.1.0.20',
        netmask: '255.255.252.0',
        gateway: '10.1.0.1',
        nameserver: '10.1.0.10,10.1.0.11',
        hostname: 'hv0001.dc1.example.com',
      },
    );
    assert.match(text, new RegExp(`^url --url=http://boot/trees/${os}$`, 'm'));
    assert.match(text, /^rootpw --iscrypted \$6\$salt\$hash$/m);
    assert.match(text, /^@\^virtualization-host-environment$/m);
    assert.match(text, /^tuned$/m);
    assert.match(text, /^systemctl enable libvirtd$/m);
    assert.match(text, /-X POST http:\/\/boot\/boot\/built\/TOKEN123 \|\| true\)$/m);
    assert.match(text, new RegExp(`^#version=RHEL${release}$`, 'm'));
  });
}

test('a host without a reserved address gets DHCP in its Kickstart', () => {
  const text = render('rhel9', { ...host, ip: null });
  const net = optionsOf(checkKickstart(text, 9).commands.get('network')![0]!);
  assert.equal(net.get('bootproto'), 'dhcp');
  assert.equal(net.has('ip'), false);
});

test('RHEL 6 template uses RHEL 6 syntax and still closes its sections', () => {
  const text = render('rhel6');
  const { problems, commands } = checkKickstart(text, 6);
  assert.deepEqual(
    problems.filter((p) => !p.includes('authselect')),
    [],
  );
  assert.ok(commands.has('install') && commands.has('authconfig'));
  assert.match(text, /^chkconfig libvirtd on$/m);
});

test('the structural check catches what it claims to', () => {
  assert.ok(
    checkKickstart(
      'url --url=x\nnetwork --bootproto=dhcp\nrootpw --lock\nbootloader\nreboot\nauthselect x\ninstall\n%packages\n',
      9,
    ).problems.some((p) => p.includes('never closed')),
  );
  assert.ok(checkKickstart('install\n', 9).problems.some((p) => p.includes('"install" is not a RHEL 9')));
  assert.ok(checkKickstart('%post\n%pre\n%end\n', 8).problems.some((p) => p.includes('opened inside')));
});

const dir = mkdtempSync(join(tmpdir(), 'kvt-ks-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('operator templates override built-ins; a bad variable is an error, not an empty string', () => {
  mkdirSync(join(dir, 'kickstart'), { recursive: true });
  writeFileSync(join(dir, 'kickstart', 'rhel-kvm.ks.hbs'), '# mine for {{host.fqdn}}\n');
  writeFileSync(join(dir, 'kickstart', 'broken.ks.hbs'), 'network --ip={{host.nosuchfield}}\n');
  const mine = new KickstartTemplates(join(dir, 'kickstart'));
  const context = kickstartContext({ host, network, site, profile: profile('rhel9'), rootPasswordHash: '', urls });
  assert.equal(mine.render('rhel-kvm', context), '# mine for hv0001.dc1.example.com\n');
  assert.throws(
    () => mine.render('broken', context),
    (e: Error & { code?: string }) => e.code === 'KVMF_ERR_VALIDATION' && /nosuchfield/.test(e.message),
  );
  assert.throws(
    () => mine.render('missing', context),
    (e: Error & { code?: string }) => e.code === 'KVMF_ERR_NOT_FOUND',
  );
  assert.throws(
    () => mine.render('../etc/passwd', context),
    (e: Error & { code?: string }) => e.code === 'KVMF_ERR_VALIDATION',
  );
});
