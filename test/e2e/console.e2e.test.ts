/**
 * The web console in a real browser (Debian's chromium, driven by playwright-core), against
 * `kvmfleet serve` with every role (api, http, tftp, dhcp, worker) in a network namespace:
 *   sign in → import a site (file upload) and its hosts (pasted CSV) → watch a simulated machine
 *   build on its host page, each step lit by the live event stream (no reload) → adopt a discovered
 *   machine → start a clone job on a real libvirtd and watch its progress bar move → a viewer sees
 *   no controls and is refused by the API (403), a wrong token gets 401 → the audit page shows it all.
 * The simulated machine is Debian's udhcpc (as PXE firmware, then as iPXE), curl over TFTP and
 * HTTP (script, kernel, initrd, Kickstart, %post callback) from a second namespace.
 * Screenshots go to /tmp/kvmfleet-e2e-artifacts/console/.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.ts';
import {
  cleanUpAtExit,
  createDirPool,
  createIsolatedBridge,
  ensureLibvirtd,
  removeDomains,
} from '../helpers/libvirtd.ts';
import { createNamespacePair, type NamespacePair } from '../helpers/netns.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';
import { buildTestOsDisk } from '../helpers/test-os.ts';
import { failpoint } from '../helpers/failpoint.ts';

const run = promisify(execFile);
const id = process.pid % 100000;
const PREFIX = `kvt-con-${id}`;
const POOL = `kvt-con-${id}`;
const BRIDGE = `kvfcon${id}`;
const ARTIFACTS = join(process.env.TMPDIR ?? '/tmp', 'kvmfleet-e2e-artifacts', 'console');
const HTTP_PORT = 8081;
const PASSWORD = 'correct horse battery staple';
const MACHINE_MAC = '52:54:00:c0:00:01';
const STRANGER_MAC = '52:54:00:c0:00:99';
const CLONES = 12;
const virsh = async (...args: string[]) => (await run('virsh', ['-c', 'qemu:///system', ...args])).stdout;
const exitCleanup = cleanUpAtExit([['pool-destroy', POOL]], [BRIDGE]);

let work: string;
let net: NamespacePair;
let server: ServerProcess;
let browser: Browser;
let page: Page;
let daemon: { stop(): Promise<void> };
let adminToken: string;
/** Hypervisor, source VM and sealed template, made through the API while the build is watched. */
let templateReady: Promise<void>;

/** The API through curl inside the server's namespace (its loopback is not the test's). */
async function api<T = unknown>(
  method: string,
  path: string,
  body?: unknown,
  token = adminToken,
  timeoutS = 300,
): Promise<{ status: number; data: T }> {
  const args = ['-sS', '-m', String(timeoutS), '-X', method, '-w', '\n%{http_code}', `${server.url}${path}`];
  if (token) args.push('-H', `authorization: Bearer ${token}`);
  if (body !== undefined) args.push('-H', 'content-type: application/json', '--data-binary', JSON.stringify(body));
  const { stdout } = await net.server.exec('curl', args, { timeoutMs: (timeoutS + 10) * 1000 });
  const cut = stdout.lastIndexOf('\n');
  const text = stdout.slice(0, cut);
  return { status: Number(stdout.slice(cut + 1)), data: (text ? JSON.parse(text) : undefined) as T };
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** The machine's side, from the client namespace. */
const machine = {
  dhcp: async (extra: string[]) => {
    const { stdout } = await net.client.exec(
      'udhcpc',
      ['-i', net.client.device, '-n', '-q', '-f', '-t', '5', '-T', '2', '-s', join(work, 'udhcpc.script'), ...extra],
      { timeoutMs: 60_000 },
    );
    const lease = /LEASE ip=(\S+) siaddr=(\S*) boot_file=(.*)/.exec(stdout);
    if (!lease) throw new Error(`udhcpc got no lease:\n${stdout}`);
    return { ip: lease[1]!, siaddr: lease[2]!, bootFile: lease[3]!.trim() };
  },
  curl: async (...args: string[]) => (await net.client.exec('curl', ['-sS', '-f', '-m', '30', ...args])).stdout,
};

async function login(name: string): Promise<void> {
  await page.goto(`${server.url}/console/`);
  await page.evaluate(() => sessionStorage.clear()); // whoever was signed in before
  await page.reload();
  await page.fill('input[name=user]', name);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=who]');
}

async function signOut(): Promise<void> {
  await page.click('text=Sign out');
  await page.waitForSelector('form.login');
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kvt-console-'));
  await chmod(work, 0o755);
  await rm(ARTIFACTS, { recursive: true, force: true }); // only this run's screenshots
  await mkdir(ARTIFACTS, { recursive: true });
  await mkdir(join(work, 'trees', 'rhel9', 'images', 'pxeboot'), { recursive: true });
  await writeFile(join(work, 'trees', 'rhel9', 'images', 'pxeboot', 'vmlinuz'), Buffer.alloc(256 * 1024, 1));
  await writeFile(join(work, 'trees', 'rhel9', 'images', 'pxeboot', 'initrd.img'), Buffer.alloc(512 * 1024, 2));
  // udhcpc's script: take the address, and print what the firmware would act on.
  await writeFile(
    join(work, 'udhcpc.script'),
    '#!/bin/sh\ncase "$1" in\n  bound|renew)\n    ip addr flush dev "$interface"\n    ip addr add "$ip/${mask:-24}" dev "$interface"\n    echo "LEASE ip=$ip siaddr=$siaddr boot_file=$boot_file"\n    ;;\nesac\nexit 0\n',
    { mode: 0o755 },
  );

  net = await createNamespacePair('con', { clientAddress: false });
  await net.client.exec('ip', ['link', 'set', 'dev', net.client.device, 'address', MACHINE_MAC]);
  server = await startServer(
    [
      '--roles',
      'api,http,tftp,dhcp,worker',
      '--data-dir',
      join(work, 'data'),
      '--trees-dir',
      join(work, 'trees'),
      '--dhcp-server-id',
      net.server.ip,
      '--http-listen',
      `${net.server.ip}:${HTTP_PORT}`,
      '--tftp-listen',
      `${net.server.ip}:69`,
      '--boot-base-url',
      `http://${net.server.ip}:${HTTP_PORT}`,
      '--cpu-overcommit',
      '16',
      '--log-level',
      'warn',
    ],
    {},
    90_000,
    { netns: net.server.name },
  );
  // The first admin is made while the API is open on loopback (no user yet), as an operator would.
  const admin = await api<{ token: string }>(
    'POST',
    '/api/v1/users',
    { name: 'alice', role: 'admin', password: PASSWORD, withToken: true },
    '',
  );
  assert.equal(admin.status, 201);
  adminToken = admin.data.token;
  assert.equal(
    (await api('POST', '/api/v1/users', { name: 'victor', role: 'viewer', password: PASSWORD })).status,
    201,
  );

  await mkdir(join(work, 'pool'));
  await createIsolatedBridge(BRIDGE);
  daemon = await ensureLibvirtd();
  await createDirPool(POOL, join(work, 'pool'));
  await buildTestOsDisk(join(work, 'pool', `${PREFIX}-src.qcow2`));
  await virsh('pool-refresh', POOL);

  browser = await launchChromium({ netns: net.server.name });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(30_000);
  page.on('pageerror', (error) => console.error('console page error:', error.message));
});

after(async () => {
  await browser?.close();
  await removeDomains(PREFIX);
  await server?.kill();
  await net?.cleanup();
  exitCleanup();
  await daemon?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('sign in, import a site by file upload and its hosts as pasted CSV', { timeout: 120_000 }, async () => {
  await page.goto(`${server.url}/`); // redirected to the console
  await page.waitForSelector('form.login');
  await page.fill('input[name=user]', 'alice');
  await page.fill('input[name=password]', 'wrong password!');
  await page.click('button[type=submit]');
  assert.match(
    (await page.textContent('form.login [role=alert]', { timeout: 10_000 })) ?? '',
    /wrong user name or password \(401\)/,
  );
  await login('alice');
  assert.equal(await page.textContent('[data-testid=who]'), 'alice (admin)');

  const s = net.subnet;
  const siteYaml = `sites:\n  - name: lab\n    buildCap: 5\n    networks:\n      - { name: lab-hv, cidr: ${s}.0/24, gateway: ${s}.1, dns: [${s}.1], domain: lab.example.com, dynamicRange: { start: ${s}.100, end: ${s}.199 } }\nprofiles:\n  - { name: rhel9-kvm, os: rhel9, installTreeUrl: "http://${s}.1:${HTTP_PORT}/trees/rhel9" }\n`;
  await writeFile(join(work, 'site.yaml'), siteYaml);
  await page.setInputFiles('input[name=site-yaml-file]', join(work, 'site.yaml'));
  await page.waitForFunction(() =>
    (document.querySelector('textarea[name=site-yaml]') as HTMLTextAreaElement | null)?.value.includes('lab-hv'),
  );
  await page.click('[data-import=site-yaml] button:has-text("Import")');
  await page.waitForSelector('[data-import=site-yaml] pre.result:has-text("sites: 1 created")');

  // A bad CSV first: refused with the offending line, nothing written.
  await page.fill(
    'textarea[name=hosts-csv]',
    `hostname,mac,ip,network,profile\nbad.lab.example.com,52:54:00:c0:00:02,${s}.150,lab-hv,rhel9-kvm\n`,
  );
  await page.click('[data-import=hosts-csv] button:has-text("Import")');
  assert.match(
    (await page.textContent('[data-import=hosts-csv] pre.error')) ?? '',
    /line 2 \(bad\.lab\.example\.com\): .*dynamic range/,
  );
  const csv = [
    'hostname,mac,ip,network,profile',
    `hv1.lab.example.com,${MACHINE_MAC},${s}.11,lab-hv,rhel9-kvm`,
    `hv2.lab.example.com,52:54:00:c0:00:02,${s}.12,lab-hv,rhel9-kvm`,
    `hv3.lab.example.com,52:54:00:c0:00:03,${s}.13,lab-hv,rhel9-kvm`,
  ].join('\n');
  await page.fill('textarea[name=hosts-csv]', csv);
  await page.click('[data-import=hosts-csv] button:has-text("Import")');
  await page.waitForSelector('[data-import=hosts-csv] pre.result:has-text("created 3")');
  await page.waitForSelector('tr[data-site=lab] td[data-count=ready]:has-text("3")');
  await shot('01-site-imported');
  // The site's link lists its hosts; the search is answered by the API (name, address or MAC).
  await page.click('tr[data-site=lab] a:has-text("lab")');
  await page.waitForSelector('[data-testid=host-count]:has-text("3 host(s)")');
  await page.fill('input[type=search]', 'c0:00:02');
  await page.waitForSelector('[data-testid=host-count]:has-text("1 host(s)")');
  assert.deepEqual(await page.$$eval('tr[data-host]', (rows) => rows.map((r) => r.getAttribute('data-host'))), [
    'hv2.lab.example.com',
  ]);

  // While the build is watched: a hypervisor (this machine's libvirtd), a VM on the test OS disk, sealed as a template.
  templateReady = (async () => {
    const hv = await api('POST', '/api/v1/hypervisors', {
      name: 'hv-local',
      uri: 'qemu:///system',
      site: 'lab',
      storagePool: POOL,
      bridge: BRIDGE,
      maxParallel: 1,
    });
    assert.equal(hv.status, 201, JSON.stringify(hv.data));
    const vm = await api('POST', '/api/v1/vms', {
      name: `${PREFIX}-src`,
      hypervisor: 'hv-local',
      memoryMiB: 256,
      vcpus: 1,
      source: { kind: 'import', disk: join(work, 'pool', `${PREFIX}-src.qcow2`) },
      start: false,
    });
    assert.equal(vm.status, 201, JSON.stringify(vm.data));
    const sealed = await api(
      'POST',
      '/api/v1/templates',
      { vm: `${PREFIX}-src`, name: `${PREFIX}-tmpl` },
      adminToken,
      600,
    );
    assert.equal(sealed.status, 201, JSON.stringify(sealed.data));
  })();
  templateReady.catch(() => undefined); // awaited (and reported) by the clone test
});

test(
  'a simulated build advances live on the host timeline: DHCP → TFTP → script → kernel → Kickstart → built',
  { timeout: 180_000 },
  async () => {
    await page.goto(`${server.url}/console/#/hosts/hv1.lab.example.com`);
    await page.waitForSelector('ol.steps li[data-step=dhcp].pending');
    // What it would get now, without side effects: the script (an install) and its Kickstart.
    await page.click('button:has-text("iPXE script (BIOS)")');
    assert.match((await page.textContent('pre.preview')) ?? '', /^#!ipxe\n[\s\S]*kernel .*inst\.ks=.*PREVIEW-TOKEN/);
    await page.click('button:has-text("Kickstart")');
    await page.waitForSelector('pre.preview[data-preview=Kickstart]');
    assert.match((await page.textContent('pre.preview')) ?? '', /%post[\s\S]*\/boot\/built\//);
    // Every step below must light up without the page being loaded again: only the event stream can do it.
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    const stepDone = (step: string) => page.waitForSelector(`ol.steps li[data-step=${step}].done`, { timeout: 20_000 });

    // PXE firmware (BIOS): DHCP with the PXEClient vendor class and client architecture 0 → undionly.kpxe over TFTP.
    const pxe = await machine.dhcp(['-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x5d:0000']);
    assert.equal(pxe.ip, `${net.subnet}.11`, 'the reserved address');
    assert.equal(pxe.bootFile, 'undionly.kpxe');
    await stepDone('dhcp');
    await machine.curl('-o', join(work, 'undionly.kpxe'), `tftp://${pxe.siaddr || net.server.ip}/${pxe.bootFile}`);
    await stepDone('tftp');
    await shot('02-build-dhcp-tftp');

    // iPXE: DHCP again with user class "iPXE" → the script URL; then the script, kernel, initrd.
    const ipxe = await machine.dhcp([
      '-V',
      'PXEClient:Arch:00000:UNDI:002001',
      '-x',
      '0x5d:0000',
      '-x',
      '0x4d:69505845',
    ]);
    assert.match(ipxe.bootFile, /^http:\/\/.*\/boot\//);
    const scriptUrl = ipxe.bootFile
      .replace('${mac:hexhyp}', MACHINE_MAC.replace(/:/g, '-'))
      .replace('${platform}', 'pcbios');
    const script = await machine.curl(scriptUrl);
    await stepDone('script');
    await page.waitForSelector('.facts .badge.building');
    // The site's queue shows it holding one of the 5 build slots (the hash changes; the page is not reloaded).
    await page.goto(`${server.url}/console/#/sites`);
    await page.click('tr[data-site=lab] button:has-text("queue")');
    await page.waitForSelector('[data-queue=lab] h3:has-text("Building: 1 of 5 slots")');
    assert.equal(await page.textContent('[data-queue=lab] ol li a'), 'hv1.lab.example.com');
    await page.waitForSelector('tr[data-site=lab] td[data-count=building]:has-text("1")');
    // And the boot servers' activity summary (every 5 s from the event stream) counts the script it fetched.
    assert.match(
      (await page.textContent('[data-testid=activity]:has-text("script")', { timeout: 12_000 })) ?? '',
      /last 5 s: .*script \d+/,
    );
    await shot('03-site-queue');
    await page.goto(`${server.url}/console/#/hosts/hv1.lab.example.com`);
    await stepDone('script');
    const kernelUrl = /^kernel (\S+)/m.exec(script)?.[1];
    const initrdUrl = /^initrd (?:--name \S+ )?(\S+)/m.exec(script)?.[1];
    const ksUrl = /inst\.ks=(\S+)/.exec(script)?.[1];
    assert.ok(kernelUrl && initrdUrl && ksUrl, script);
    await machine.curl('-L', '-o', '/dev/null', kernelUrl);
    await machine.curl('-L', '-o', '/dev/null', initrdUrl);
    await stepDone('kernel');
    await shot('04-build-kernel');

    // The installer: the Kickstart, then its %post callback.
    const kickstart = await machine.curl(ksUrl);
    await stepDone('kickstart');
    const callback = /-X POST (\S+\/boot\/built\/\S+)/.exec(kickstart)?.[1];
    assert.ok(callback, 'the Kickstart calls back');
    await machine.curl('-X', 'POST', callback);
    await stepDone('built');
    await page.waitForSelector('.facts .badge.built');
    assert.equal(
      await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded),
      true,
      'the page was not reloaded',
    );
    const events = await page.$$eval('table.events tr[data-event]', (rows) =>
      rows.map((r) => r.getAttribute('data-event')),
    );
    for (const kind of ['dhcp', 'tftp', 'build-started', 'script', 'kernel', 'initrd', 'kickstart', 'built'])
      assert.ok(events.includes(kind), `${kind} in ${events.join(', ')}`);
    await shot('05-build-built');

    await page.goto(`${server.url}/console/#/sites`);
    await page.waitForSelector('tr[data-site=lab] td[data-count=built]:has-text("1")');
    await page.waitForSelector('tr[data-site=lab] td[data-count=ready]:has-text("2")');
  },
);

test(
  'a machine with an unknown MAC shows up as discovered and is adopted from the console',
  { timeout: 60_000 },
  async () => {
    await page.goto(`${server.url}/console/#/discovered`);
    await page.waitForSelector('text=None: every machine that network-booted is known.');
    await net.client.exec('ip', ['addr', 'flush', 'dev', net.client.device]);
    await net.client.exec('ip', ['link', 'set', 'dev', net.client.device, 'address', STRANGER_MAC]);
    const lease = await machine.dhcp(['-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x5d:0000']);
    assert.match(
      lease.ip,
      new RegExp(`^${net.subnet.replace(/\./g, '\\.')}\\.1\\d\\d$`),
      'an address from the dynamic range',
    );
    const row = `tr[data-host="discovered-${STRANGER_MAC.replace(/:/g, '')}"]`;
    await page.waitForSelector(row); // appears live
    await page.fill(`${row} input[aria-label=hostname]`, 'hv4.lab.example.com');
    await page.fill(`${row} input[aria-label=address]`, `${net.subnet}.14`);
    await page.selectOption(`${row} select[aria-label=network]`, 'lab-hv');
    await shot('06-discovered');
    await page.click(`${row} button:has-text("Adopt")`);
    await page.waitForSelector(row, { state: 'detached' });
    const adopted = await api<{ buildState: string; ip: string; macs: string[] }>(
      'GET',
      '/api/v1/hosts/hv4.lab.example.com',
    );
    assert.deepEqual(
      [adopted.data.buildState, adopted.data.ip, adopted.data.macs],
      ['ready', `${net.subnet}.14`, [STRANGER_MAC]],
    );
  },
);

test('a clone job started from the console shows its progress live, item by item', { timeout: 900_000 }, async () => {
  await templateReady;
  await page.goto(`${server.url}/console/#/vms`);
  await page.waitForSelector(`tr[data-template="${PREFIX}-tmpl"]`);
  // Record every value the job's progress bar takes, from before the job exists.
  await page.evaluate(() => {
    const w = window as unknown as { progressSeen: number[] };
    w.progressSeen = [];
    new MutationObserver(() => {
      for (const bar of document.querySelectorAll('[role=progressbar][aria-label^="job "]')) {
        const value = Number(bar.getAttribute('aria-valuenow'));
        if (w.progressSeen.at(-1) !== value) w.progressSeen.push(value);
      }
    }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['aria-valuenow'] });
  });
  await page.fill('input[name=clone-name]', `${PREFIX}-web`);
  await page.fill('input[name=count]', String(CLONES));
  await page.selectOption('select[name=kind]', 'linked');
  await page.uncheck('.clone-form input[type=checkbox]');
  await page.click('.clone-form button:has-text("Start clone job")');
  await page.waitForURL(/#\/jobs\?job=\d+/);
  await page.waitForSelector('tr[data-job] [role=progressbar]');
  await shot('07-job-running');
  failpoint('console:job-running');
  await page.waitForSelector('tr[data-job] .badge.succeeded', { timeout: 600_000 });
  const job = (await api<{ results: { name: string; ok: boolean }[] }[]>('GET', '/api/v1/jobs')).data[0]!;
  const names = job.results.map((r) => r.name).sort();
  assert.equal(names.length, CLONES);
  assert.ok(job.results.every((r) => r.ok));
  await page.waitForFunction((n) => document.querySelectorAll('.job-results tr[data-item]').length === n, CLONES);
  await shot('08-job-done');
  const seen = await page.evaluate(() => (window as unknown as { progressSeen: number[] }).progressSeen);
  assert.equal(seen.at(-1), CLONES, `final value: ${seen.join(' → ')}`);
  assert.ok(
    seen.some((v) => v > 0 && v < CLONES),
    `the bar moved through intermediate values, not only to the end: ${seen.join(' → ')}`,
  );
  assert.equal(await page.getAttribute('tr[data-job] [role=progressbar]', 'aria-valuemax'), String(CLONES));

  await page.goto(`${server.url}/console/#/vms`);
  await page.waitForSelector(`tr[data-vm="${names[0]}"]`);
  assert.equal(await page.locator(`tr[data-vm^="${PREFIX}-web-"]`).count(), CLONES);
  const defined = (await virsh('list', '--all', '--name')).split('\n').filter((n) => n.startsWith(`${PREFIX}-web-`));
  assert.deepEqual(defined.sort(), names, 'libvirt has every clone');
  // An action from the table: start one clone, see it running, destroy it.
  const first = `tr[data-vm="${names[0]}"]`;
  await page.click(`${first} button:has-text("Start")`);
  await page.waitForSelector(`${first} .badge.running`);
  assert.match(await virsh('domstate', names[0]!), /running/);
  await shot('09-vms');
  await page.click(`${first} button:has-text("Destroy")`);
  await page.waitForSelector(`${first} .badge.shutoff`);
});

test(
  "an operator sets a host's BMC on its page; the password goes in once and is never shown",
  { timeout: 60_000 },
  async () => {
    const bmcPassword = 'console-bmc-pass-7Qx';
    await page.goto(`${server.url}/console/#/hosts/hv2.lab.example.com`);
    await page.waitForSelector('.bmc-summary:has-text("no BMC")');
    await page.selectOption('select[name=bmc-type]', 'ipmi');
    await page.fill('input[name=bmc-address]', '10.99.0.2:623');
    await page.fill('input[name=bmc-user]', 'admin');
    await page.fill('input[name=bmc-password]', bmcPassword);
    await page.click('button:has-text("Save BMC")');
    await page.waitForSelector('.bmc-summary:has-text("ipmi at 10.99.0.2:623, user admin; password set")');
    assert.equal(await page.inputValue('input[name=bmc-password]'), '', 'the password field is empty again');
    assert.equal((await page.content()).includes(bmcPassword), false, 'the password is nowhere on the page');
    // The power buttons appear once the host has a BMC.
    await page.waitForSelector('button:has-text("Power on")');
    const stored = (await page.evaluate(`(async () => {
    const token = sessionStorage.getItem('kvmfleet.token');
    const r = await fetch('/api/v1/hosts/hv2.lab.example.com/bmc', { headers: { authorization: 'Bearer ' + token } });
    return r.text();
  })()`)) as string;
    assert.match(stored, /"passwordSet":true/);
    assert.equal(stored.includes(bmcPassword), false, 'nor in the API answer');
    await shot('09-bmc');
  },
);

test('a viewer sees no controls and is refused by the API; a wrong token gets 401', { timeout: 60_000 }, async () => {
  await signOut();
  await login('victor');
  assert.equal(await page.textContent('[data-testid=who]'), 'victor (viewer)');
  await page.waitForSelector('tr[data-site=lab]');
  assert.equal(await page.locator('[data-import]').count(), 0, 'no import panel');
  assert.equal(await page.locator('nav >> text=Audit').count(), 0, 'no audit page in the menu');
  await page.goto(`${server.url}/console/#/hosts/hv1.lab.example.com`);
  await page.waitForSelector('ol.steps li[data-step=built].done');
  assert.equal(await page.locator('button:has-text("Rebuild")').count(), 0);
  assert.equal(await page.locator('input[name=bmc-password]').count(), 0, 'no BMC form for a viewer');
  assert.equal(
    await page.locator('button:has-text("Kickstart")').count(),
    0,
    'a Kickstart holds the root password hash',
  );
  await page.click('button:has-text("iPXE script (UEFI)")');
  assert.match((await page.textContent('pre.preview')) ?? '', /^#!ipxe\n/);
  await shot('10-viewer');

  // The same calls the console would make, with the viewer's session: refused.
  // (A string, not a function: tsx would add its name helpers to a function, which the page lacks.)
  const refused = await page.evaluate(`(async () => {
    const token = sessionStorage.getItem('kvmfleet.token');
    const post = (path, body) => fetch(path, { method: 'POST', headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.status);
    return {
      kickstart: await fetch('/api/v1/hosts/hv1.lab.example.com/kickstart', { headers: { authorization: 'Bearer ' + token } }).then((r) => r.status),
      rebuild: await post('/api/v1/hosts/hv1.lab.example.com/rebuild', {}),
      site: await post('/api/v1/sites', { name: 'evil' }),
      wrongToken: await fetch('/api/v1/hosts', { headers: { authorization: 'Bearer kvmf_not-a-real-token-000000000000' } }).then((r) => r.status),
      noToken: await fetch('/api/v1/hosts').then((r) => r.status),
    };
  })()`);
  assert.deepEqual(refused, { kickstart: 403, rebuild: 403, site: 403, wrongToken: 401, noToken: 401 });
  // A session whose token is no longer valid goes back to the sign-in form.
  await page.evaluate(() => sessionStorage.setItem('kvmfleet.token', 'kvmf_not-a-real-token-000000000000'));
  await page.reload();
  await page.waitForSelector('form.login');
});

test(
  'an admin adds a user and makes a scoped token that works, shown once, then revokes it',
  { timeout: 60_000 },
  async () => {
    await login('alice');
    await page.goto(`${server.url}/console/#/access`);
    await page.waitForSelector('tr[data-user=victor]');
    await page.fill('input[name=user-name]', 'olga');
    await page.selectOption('select[name=user-role]', 'operator');
    await page.fill('input[name=user-password]', PASSWORD);
    await page.click('button:has-text("Add user")');
    await page.waitForSelector('tr[data-user=olga]');
    await page.fill('input[name=token-name]', 'dashboards');
    await page.check('input[name=scope-read]');
    await page.click('button:has-text("Create token")');
    const token = (await page.textContent('[data-testid=new-token]')) ?? '';
    assert.match(token, /^kvmf_[A-Za-z0-9_-]{43}$/);
    await page.waitForSelector('tr[data-token=dashboards]');
    await shot('11-access');
    assert.equal((await api('GET', '/api/v1/hosts', undefined, token)).status, 200);
    assert.equal((await api('POST', '/api/v1/sites', { name: 'nope' }, token)).status, 403, 'scoped to read');
    await page.click('tr[data-token=dashboards] button:has-text("Revoke")');
    await page.waitForSelector('tr[data-token=dashboards]', { state: 'detached' });
    assert.equal((await api('GET', '/api/v1/hosts', undefined, token)).status, 401, 'revoked');
    // The new operator signs in with the password the admin gave.
    await signOut();
    await login('olga');
    assert.equal(await page.textContent('[data-testid=who]'), 'olga (operator)');
  },
);

test('the audit page shows who did what, allowed and refused', { timeout: 60_000 }, async () => {
  await login('alice');
  await page.goto(`${server.url}/console/#/audit`);
  await page.waitForSelector('table.audit tbody tr');
  const rows = await page.$$eval('table.audit tbody tr', (trs) =>
    trs.map((tr) => [...tr.querySelectorAll('td')].slice(1).map((td) => td.textContent ?? '')),
  );
  const has = (actor: string, action: string, result: string) =>
    rows.some(([a, act, , res]) => a === actor && act === action && res === result);
  assert.ok(has('alice', 'POST /api/v1/import/site', '200'), `audit rows: ${JSON.stringify(rows)}`);
  assert.ok(has('alice', 'POST /api/v1/import/hosts', '422'), 'the refused CSV');
  assert.ok(has('alice', 'POST /api/v1/import/hosts', '200'));
  assert.ok(has('alice', 'POST /api/v1/hosts/:name/adopt', '200'));
  assert.ok(has('alice', 'POST /api/v1/jobs/bulk-clone', '202'));
  assert.ok(has('alice', 'POST /api/v1/vms/:name/start', '200'));
  assert.ok(has('victor', 'POST /api/v1/hosts/:name/rebuild', '403'));
  assert.ok(has('victor', 'POST /api/v1/sites', '403'));
  assert.ok(has('login:alice', 'POST /api/v1/login', '401'), 'the wrong password');
  assert.ok(has('login:alice', 'POST /api/v1/login', '200'));
  assert.ok(has('alice', 'POST /api/v1/logout', '204'), 'signing out');
  assert.ok(has('alice', 'POST /api/v1/users', '201'));
  assert.ok(has('alice', 'POST /api/v1/tokens', '201'));
  assert.ok(has('alice', 'DELETE /api/v1/tokens/:id', '204'));
  assert.ok(has('alice', 'POST /api/v1/sites', '403'), 'the read-scoped token refused');
  await shot('12-audit');
  // The API agrees with the page.
  const viaApi = await api<{ actor: string; action: string; result: string }[]>('GET', '/api/v1/audit?actor=victor');
  assert.ok(viaApi.data.some((e) => e.action === 'POST /api/v1/sites' && e.result === '403'));
});
