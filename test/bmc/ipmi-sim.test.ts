/**
 * kvmfleet's IPMI client and power verbs against a real IPMI LAN server: OpenIPMI's ipmi_sim in a
 * "BMC" namespace, kvmfleet (the client, then `kvmfleet serve` and its CLI) in a "management"
 * namespace, joined by a veth pair and nothing else. Every answer is checked against ipmitool
 * (-I lanplus -C 3 -E: password from the environment) asking the same ipmi_sim, and against the
 * chassis-control script's record of what ipmi_sim was asked to do.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createNamespacePair, type NamespacePair } from '../helpers/netns.ts';
import { KVMFLEET_BIN, startServer, type ServerProcess } from '../helpers/server.ts';
import { startIpmiSim, type IpmiSim } from './ipmi-sim.ts';

const PROBE = new URL('./ipmi-probe.ts', import.meta.url).pathname;
const PASSWORD = 'Sim-pass-0417';

interface ProbeResult {
  ok: boolean;
  results?: unknown[];
  info?: { suite: number; refused: { suite: number; status: number }[]; dropped: number; retransmissions: number };
  error?: { kind: string; message: string; status?: number };
  elapsedMs: number;
}

describe('IPMI against ipmi_sim', { timeout: 300_000 }, () => {
  let net: NamespacePair;
  let sim: IpmiSim;
  const work = mkdtempSync(join(tmpdir(), 'kvt-ipmi-'));

  /** kvmfleet's client, run in the management namespace; the password travels in the environment. */
  const probe = async (
    ops: unknown[],
    o: { password?: string; host?: string; options?: Record<string, unknown> } = {},
  ): Promise<ProbeResult> => {
    const args = JSON.stringify({
      host: o.host ?? sim.host,
      port: sim.port,
      username: sim.username,
      ops,
      options: o.options ?? {},
    });
    const { stdout } = await net.client.exec(
      'env',
      [`KVMT_IPMI_PASSWORD=${o.password ?? sim.password}`, process.execPath, '--import', 'tsx', PROBE, args],
      { timeoutMs: 60_000 },
    );
    return JSON.parse(stdout.trim().split('\n').pop()!) as ProbeResult;
  };
  /** ipmitool asking the same BMC (-C 3: ipmi_sim never answers the cipher-suite query, which costs ~10 s). */
  const ipmitool = async (...args: string[]) =>
    (
      await net.client.exec('env', [
        `IPMI_PASSWORD=${sim.password}`,
        'ipmitool',
        '-I',
        'lanplus',
        '-C',
        '3',
        '-E',
        '-H',
        sim.host,
        '-U',
        sim.username,
        ...args,
      ])
    ).stdout.trim();
  const waitFor = async (what: string, check: () => boolean, ms = 5000) => {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  before(async () => {
    net = await createNamespacePair('ipmi');
    sim = await startIpmiSim(net.server, { password: PASSWORD });
  });
  after(async () => {
    await sim?.stop();
    await net?.cleanup();
    rmSync(work, { recursive: true, force: true });
  });

  test('power status agrees with ipmitool, off and on; suite 17 offered first, 3 used when ipmi_sim refuses it', async () => {
    const off = await probe([{ status: true }]);
    assert.ok(off.ok, JSON.stringify(off));
    assert.deepEqual(off.results, ['off']);
    assert.equal(await ipmitool('power', 'status'), 'Chassis Power is off');
    sim.setPower('on');
    const on = await probe([{ status: true }]);
    assert.deepEqual(on.results, ['on']);
    assert.equal(await ipmitool('power', 'status'), 'Chassis Power is on');
    // ipmi_sim knows no RAKP-HMAC-SHA256: it refuses suite 17 with status 0x04 (invalid authentication algorithm)
    assert.equal(on.info!.suite, 3);
    assert.deepEqual(on.info!.refused, [{ suite: 17, status: 0x04 }]);
    assert.equal(on.info!.dropped, 0);
    const only17 = await probe([{ status: true }], { options: { suites: [17] } });
    assert.equal(only17.error?.kind, 'unsupported');
    sim.setPower('off');
  });

  test('on, off, reset, soft and cycle reach the chassis as ipmi_sim passes them on; ipmitool sees the result', async () => {
    const before = sim.record().length;
    const r = await probe([
      { control: 'on' },
      { status: true },
      { control: 'reset' },
      { control: 'soft' },
      { control: 'off' },
      { status: true },
    ]);
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.results, [0, 'on', 0, 0, 0, 'off']);
    assert.deepEqual(sim.record().slice(before), ['power 1', 'reset 1', 'shutdown 1', 'power 0']);
    assert.equal(await ipmitool('power', 'status'), 'Chassis Power is off');
    // a cycle: off now, on again a second later (ipmi_sim's power-on timer)
    sim.setPower('on');
    const mark = sim.record().length;
    const cycle = await probe([{ control: 'cycle' }]);
    assert.deepEqual(cycle.results, [0]);
    await waitFor('power on after the cycle', () => sim.record().slice(mark).join(',') === 'power 0,power 1');
    assert.equal(await ipmitool('power', 'status'), 'Chassis Power is on');
    sim.setPower('off');
  });

  test("bootdev pxe and disk reach the chassis as ipmitool's own chassis bootdev does", async () => {
    const cases: [string, { device: 'pxe' | 'disk'; persistent: boolean; uefi: boolean }][] = [
      ['pxe', { device: 'pxe', persistent: false, uefi: false }],
      ['disk', { device: 'disk', persistent: true, uefi: true }],
    ];
    for (const [device, flags] of cases) {
      const mark = sim.record().length;
      await ipmitool('chassis', 'bootdev', device);
      const theirs = sim.record().slice(mark);
      const r = await probe([{ boot: flags }]);
      assert.ok(r.ok, JSON.stringify(r));
      const ours = sim.record().slice(mark + theirs.length);
      assert.deepEqual(
        ours,
        theirs.filter((l) => l.startsWith('boot ')),
        device,
      );
      assert.deepEqual(ours, [`boot ${device === 'pxe' ? 'pxe' : 'default'}`]);
    }
  });

  test('a wrong password is refused as an authentication error, and nothing reaches the chassis', async () => {
    const mark = sim.record().length;
    const r = await probe([{ control: 'on' }], { password: 'not-the-password' });
    assert.equal(r.ok, false);
    assert.equal(r.error?.kind, 'auth');
    assert.match(r.error!.message, /wrong password/);
    assert.ok(!r.error!.message.includes('not-the-password'));
    assert.deepEqual(sim.record().slice(mark), []);
  });

  test('an unreachable BMC fails as unreachable within the retry budget', async () => {
    const nobody = `${net.subnet}.77`;
    const quick = await probe([{ status: true }], { host: nobody, options: { timeoutMs: 200, attempts: 3 } });
    assert.equal(quick.error?.kind, 'unreachable');
    // 200 + 400 + 800 ms of waiting
    assert.ok(quick.elapsedMs >= 1400 && quick.elapsedMs < 4000, `${quick.elapsedMs} ms`);
    const defaults = await probe([{ status: true }], { host: nobody });
    assert.equal(defaults.error?.kind, 'unreachable');
    assert.ok(defaults.elapsedMs >= 7000 && defaults.elapsedMs < 9000, `${defaults.elapsedMs} ms (1 + 2 + 4 s)`);
    console.log(`# unreachable BMC: ${quick.elapsedMs} ms (200 ms first wait), ${defaults.elapsedMs} ms (defaults)`);
  });

  test('10 % of UDP datagrams lost each way: retransmissions with backoff still get every answer', async () => {
    await net.setUdpLoss(10);
    try {
      const results: ProbeResult[] = [];
      for (let i = 0; i < 10; i++)
        results.push(
          await probe([{ status: true }, { status: true }, { status: true }], {
            options: { timeoutMs: 100, attempts: 8 },
          }),
        );
      assert.deepEqual(
        results.filter((r) => !r.ok).map((r) => r.error),
        [],
        'every session opened and answered',
      );
      const retransmissions = results.reduce((n, r) => n + r.info!.retransmissions, 0);
      // ~8 exchanges a session, ~19 % of them lose a datagram: some must have been sent again
      assert.ok(retransmissions > 0, 'no retransmission happened: the loss did not apply');
      console.log(
        `# 10 % loss each way: 10 sessions, ${retransmissions} retransmissions, ${results.map((r) => r.elapsedMs).join(', ')} ms`,
      );
    } finally {
      await net.setUdpLoss(0);
    }
  });

  describe('kvmfleet serve, its API and CLI', () => {
    let server: ServerProcess;
    const password = PASSWORD;
    const answers: string[] = [];
    const api = async (
      path: string,
      method = 'GET',
      body?: unknown,
      type = 'application/json',
    ): Promise<{ status: number; body: any }> => {
      const args = ['-sS', '-X', method, '-w', '\n%{http_code}', `${server.url}${path}`];
      if (body !== undefined)
        args.push(
          '-H',
          `content-type: ${type}`,
          '--data-binary',
          typeof body === 'string' ? body : JSON.stringify(body),
        );
      const { stdout } = await net.client.exec('curl', args, { timeoutMs: 60_000 });
      answers.push(stdout);
      const cut = stdout.lastIndexOf('\n');
      const text = stdout.slice(0, cut);
      return { status: Number(stdout.slice(cut + 1)), body: text ? JSON.parse(text) : undefined };
    };
    const cli = async (args: string[], input = ''): Promise<{ code: number; stdout: string; stderr: string }> => {
      const child = net.client.spawn(process.execPath, [KVMFLEET_BIN, '--url', server.url, ...args], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d) => (stdout += d));
      child.stderr!.on('data', (d) => (stderr += d));
      child.stdin!.end(input);
      const [code] = (await once(child, 'exit')) as [number];
      answers.push(stdout, stderr);
      return { code, stdout, stderr };
    };

    before(async () => {
      server = await startServer(
        ['--roles', 'api', '--data-dir', join(work, 'data'), '--log-level', 'info'],
        { KVMFLEET_SECRET_KEY: '' },
        60_000,
        { netns: net.client.name },
      );
      const s = net.subnet;
      const site = `sites:\n  - name: lab\n    networks:\n      - { name: lab-hv, cidr: ${s}.0/24 }\nprofiles:\n  - { name: rhel9, os: rhel9, installTreeUrl: "http://${s}.1:8081/trees/rhel9" }\n`;
      assert.equal((await api('/api/v1/import/site', 'POST', site, 'application/yaml')).status, 200);
      for (const [i, hostname] of ['hv1', 'hv2', 'hv3', 'hv4'].entries())
        assert.equal(
          (
            await api('/api/v1/hosts', 'POST', {
              hostname,
              macs: [`52:54:00:b0:00:0${i + 1}`],
              network: 'lab-hv',
              profile: 'rhel9',
            })
          ).status,
          201,
        );
    });
    after(async () => {
      await server?.kill();
    });

    test('host set with the password on standard input; power and bootdev by CLI and API; clear errors; audited', async () => {
      const set = await cli(
        [
          'host',
          'set',
          'hv1',
          '--bmc-type',
          'ipmi',
          '--bmc-address',
          `${sim.host}:${sim.port}`,
          '--bmc-user',
          sim.username,
          '--bmc-password-stdin',
        ],
        `${password}\n`,
      );
      assert.equal(set.code, 0, set.stderr);
      assert.match(set.stdout, /password set/);
      const shown = await api('/api/v1/hosts/hv1/bmc');
      assert.deepEqual(shown.body, {
        type: 'ipmi',
        address: `${sim.host}:${sim.port}`,
        username: sim.username,
        credentials: null,
        passwordSet: true,
      });

      sim.setPower('off');
      const status = await cli(['host', 'power', 'hv1', 'status']);
      assert.equal(status.stdout.trim(), await ipmitool('power', 'status'));
      const on = await api('/api/v1/hosts/hv1/power', 'POST', { action: 'on' });
      assert.equal(on.status, 200);
      assert.deepEqual(on.body, { hostname: 'hv1', action: 'on', powerState: 'on', sent: 'on', cipherSuite: 3 });
      assert.equal(await ipmitool('power', 'status'), 'Chassis Power is on');
      assert.equal((await api('/api/v1/hosts/hv1/power')).body.powerState, 'on');
      const mark = sim.record().length;
      const boot = await cli(['host', 'bootdev', 'hv1', 'pxe', '--uefi']);
      assert.equal(boot.code, 0, boot.stderr);
      assert.deepEqual(sim.record().slice(mark), ['boot pxe']);
      const off = await cli(['--json', 'host', 'power', 'hv1', 'off']);
      assert.equal(JSON.parse(off.stdout).powerState, 'off');
      assert.equal(sim.power(), 'off');
      // a cycle of a machine that is off powers it on
      const cycle = await api('/api/v1/hosts/hv1/power', 'POST', { action: 'cycle' });
      assert.deepEqual([cycle.body.sent, sim.power()], ['on', 'on']);

      // a wrong password, a BMC no one answers for, a host without a BMC, an action that is not one
      assert.equal(
        (
          await cli(
            [
              'host',
              'set',
              'hv2',
              '--bmc-type',
              'ipmi',
              '--bmc-address',
              sim.host,
              '--bmc-user',
              sim.username,
              '--bmc-password-stdin',
            ],
            'wrong-password\n',
          )
        ).code,
        0,
      );
      const auth = await api('/api/v1/hosts/hv2/power', 'POST', { action: 'on' });
      assert.deepEqual([auth.status, auth.body.error.code], [502, 'KVMF_ERR_BMC_AUTH']);
      assert.equal(
        (
          await cli(
            [
              'host',
              'set',
              'hv3',
              '--bmc-type',
              'ipmi',
              '--bmc-address',
              `${net.subnet}.77`,
              '--bmc-user',
              'admin',
              '--bmc-password-stdin',
            ],
            'x\n',
          )
        ).code,
        0,
      );
      const started = Date.now();
      const unreachable = await api('/api/v1/hosts/hv3/power');
      const elapsed = Date.now() - started;
      assert.deepEqual([unreachable.status, unreachable.body.error.code], [504, 'KVMF_ERR_BMC_UNREACHABLE']);
      assert.ok(elapsed < 9000, `${elapsed} ms`);
      const none = await api('/api/v1/hosts/hv4/power');
      assert.deepEqual([none.status, none.body.error.code], [409, 'KVMF_ERR_NO_BMC']);
      const bad = await cli(['host', 'power', 'hv1', 'explode']);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /not one of status, on, off, soft, cycle, reset/);
      const cliAuth = await cli(['host', 'power', 'hv2', 'status']);
      assert.notEqual(cliAuth.code, 0);
      assert.match(cliAuth.stderr, /KVMF_ERR_BMC_AUTH|wrong password/);

      const audit = await api('/api/v1/audit?limit=200');
      const actions = (audit.body as { action: string; target: string; result: string }[])
        .filter((e) => e.action.startsWith('bmc '))
        .map((e) => `${e.action} ${e.target} ${e.result}`);
      assert.ok(actions.includes('bmc power on hv1 on'), actions.join('\n'));
      assert.ok(actions.includes('bmc bootdev pxe uefi hv1 set'), actions.join('\n'));
      assert.ok(actions.includes('bmc power on hv2 failed'), actions.join('\n'));
    });

    test('shared credentials sets; CSV import names a set and refuses a password column', async () => {
      const set = await cli(
        ['bmc', 'credentials', 'set', 'rack1', '--user', sim.username, '--password-stdin'],
        `${password}\n`,
      );
      assert.equal(set.code, 0, set.stderr);
      const csv = `hostname,mac,network,profile,bmc_type,bmc_address,bmc_credentials\nhv5,52:54:00:b0:00:05,lab-hv,rhel9,ipmi,${sim.host},rack1\n`;
      assert.equal((await api('/api/v1/import/hosts', 'POST', csv, 'text/csv')).status, 200);
      assert.equal((await api('/api/v1/hosts/hv5/bmc')).body.passwordSet, true);
      assert.equal((await api('/api/v1/hosts/hv5/power')).body.powerState, sim.power());
      const list = await cli(['bmc', 'credentials', 'list']);
      assert.match(list.stdout, /rack1\s+admin\s+1/);
      const withPassword = await api(
        '/api/v1/import/hosts',
        'POST',
        `hostname,mac,network,profile,bmc_address,bmc_password\nhv6,52:54:00:b0:00:06,lab-hv,rhel9,${sim.host},${password}\n`,
        'text/csv',
      );
      assert.deepEqual([withPassword.status, withPassword.body.error.code], [400, 'KVMF_ERR_BAD_REQUEST']);
      assert.match(withPassword.body.error.message, /passwords do not go in CSV files/);
    });

    test('the password is in no answer, no server log line and no file of the store (encrypted at rest)', async () => {
      const everything = answers.join('\n');
      // the CSV refusal above echoes nothing of the file; every answer and CLI output is free of it
      assert.ok(!everything.includes(password), 'an API answer or CLI output carries the password');
      assert.ok(server.lines.length > 10, 'the server logged its requests');
      assert.ok(!server.lines.join('\n').includes(password), 'the server log carries the password');
      const filesWith = (text: string) => {
        try {
          return execFileSync('grep', ['-rlaF', text, join(work, 'data')], { encoding: 'utf8' });
        } catch {
          return '';
        }
      };
      // control: what the store holds in plain text (a credentials set's user and name) is found this way
      assert.notEqual(
        filesWith('rack1'),
        '',
        'the store files hold no plain text at all: this check would prove nothing',
      );
      const inStore = filesWith(password);
      assert.equal(inStore, '', `the password is in plain text in ${inStore}`);
      // the key file is there, 0600, and is not the password either
      assert.equal(
        execFileSync('stat', ['-c', '%a', join(work, 'data', 'secret.key')], { encoding: 'utf8' }).trim(),
        '600',
      );
    });

    test('host rebuild --power-cycle: next boot pxe once, then a cycle (or on when off); a BMC that refuses changes nothing', async () => {
      const events = async (h: string) =>
        ((await api(`/api/v1/hosts/${h}/timeline`)).body as { kind: string }[]).filter(
          (e) => e.kind === 'rebuild-requested',
        ).length;
      sim.setPower('on');
      let mark = sim.record().length;
      const before = await events('hv1');
      const cycled = await cli(['host', 'rebuild', 'hv1', '--power-cycle']);
      assert.equal(cycled.code, 0, cycled.stderr);
      assert.match(cycled.stdout, /next boot pxe \(once\), sent cycle/);
      await waitFor(
        'power on after the cycle',
        () => sim.record().slice(mark).join(',') === 'boot pxe,power 0,power 1',
      );
      assert.equal(await events('hv1'), before + 1);
      assert.equal((await api('/api/v1/hosts/hv1')).body.buildState, 'ready');
      // off: powered on, not cycled (through the API, UEFI)
      sim.setPower('off');
      mark = sim.record().length;
      const on = await api('/api/v1/hosts/hv1/rebuild/power-cycle', 'POST', { uefi: true });
      assert.equal(on.status, 202);
      assert.deepEqual(
        [on.body.bootdev.device, on.body.bootdev.persistent, on.body.bootdev.uefi, on.body.power.sent],
        ['pxe', false, true, 'on'],
      );
      assert.deepEqual(sim.record().slice(mark), ['boot pxe', 'power 1']);
      // a wrong password: an error, and no rebuild was requested
      const hv2 = await events('hv2');
      const refused = await cli(['host', 'rebuild', 'hv2', '--power-cycle']);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /KVMF_ERR_BMC_AUTH|wrong password/);
      assert.equal(await events('hv2'), hv2);
      // the plain verb is as it was
      const plain = await cli(['host', 'rebuild', 'hv4']);
      assert.equal(plain.code, 0, plain.stderr);
      assert.match(plain.stdout, /will be rebuilt at its next network boot/);
    });

    test('key rotation as documented: a new first key, a restart re-seals everything, the old key can go', async () => {
      const keyFile = join(work, 'data', 'secret.key');
      const oldKeys = readFileSync(keyFile, 'utf8');
      const restart = async () => {
        await server.kill();
        server = await startServer(
          ['--roles', 'api', '--data-dir', join(work, 'data'), '--log-level', 'info'],
          { KVMFLEET_SECRET_KEY: '' },
          60_000,
          { netns: net.client.name },
        );
      };
      writeFileSync(keyFile, `${randomBytes(32).toString('base64')}\n${oldKeys}`);
      await restart();
      // hv1, hv2, hv3 have passwords of their own, rack1 is a set
      const line = await server.waitForLine(/re-sealed under the current key/);
      assert.match(line, /"resealed":4/);
      assert.match(line, /"unopenable":0/);
      writeFileSync(keyFile, readFileSync(keyFile, 'utf8').split('\n')[0] + '\n');
      await restart();
      assert.equal((await api('/api/v1/hosts/hv1/power')).body.powerState, sim.power());
      assert.equal((await api('/api/v1/hosts/hv5/power')).body.powerState, sim.power());
    });
  });
});
