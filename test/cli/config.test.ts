/**
 * `kvmfleet serve`'s settings: one declaration (cli/serve-options.ts) makes the flags, the environment names and the
 * configuration file's keys; precedence flags > environment > file > defaults; a bad file is refused with the key's
 * name and line; --print-config shows what serve would run with, secrets masked. The real binary runs with
 * --print-config (it prints and exits, no role starts); the file reader is also called directly.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigFileError, locateConfigFile, parseConfigFile, readConfigFile } from '../../src/cli/config-file.ts';
import {
  defaultSettings,
  envOf,
  flagOf,
  maskUrlPassword,
  SETTING_NAMES,
  settingOf,
  serveOptionsFrom,
} from '../../src/cli/serve-options.ts';
import { DEFAULT_BUILD_POLICY } from '../../src/fleet/builds.ts';
import { FAILOVER_DEFAULTS } from '../../src/boot/dhcp-failover.ts';
import { KVMFLEET_BIN } from '../helpers/server.ts';

const work = mkdtempSync(join(tmpdir(), 'kvmfleet-config-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** The real binary, with only the environment given (no KVMFLEET_* from the test runner's own environment). */
async function kvmfleet(args: string[], env: Record<string, string> = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KVMFLEET_')));
  const child = spawn(process.execPath, [KVMFLEET_BIN, ...args], {
    env: { ...clean, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const [code] = (await once(child, 'exit')) as [number];
  return { code, stdout, stderr };
}

function file(name: string, text: string): string {
  const path = join(work, name);
  writeFileSync(path, text);
  return path;
}

interface Printed {
  file: string | null;
  settings: Record<string, string | number | boolean | null>;
  sources: Record<string, string>;
}

async function printConfig(args: string[], env: Record<string, string> = {}): Promise<Printed> {
  const result = await kvmfleet(['--json', 'serve', ...args, '--print-config'], env);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as Printed;
}

describe('precedence: flag > environment > file > default', () => {
  const config = file(
    'precedence.yaml',
    ['retry-seconds: 11', 'build-timeout-min: 12', 'dhcp-mclt: 13', 'listen: 127.0.0.1:9013', ''].join('\n'),
  );

  test('each source wins over the ones below it', async () => {
    const printed = await printConfig(['--config', config, '--retry-seconds', '21', '--listen', '127.0.0.1:9021'], {
      KVMFLEET_RETRY_SECONDS: '31',
      KVMFLEET_BUILD_TIMEOUT_MIN: '32',
    });
    assert.equal(printed.file, config);
    // retry-seconds: flag, environment and file all give one: the flag wins.
    assert.deepEqual([printed.settings['retry-seconds'], printed.sources['retry-seconds']], [21, 'flag']);
    // build-timeout-min: environment and file: the environment wins.
    assert.deepEqual(
      [printed.settings['build-timeout-min'], printed.sources['build-timeout-min']],
      [32, 'environment'],
    );
    // dhcp-mclt: the file alone: it wins over the default.
    assert.deepEqual([printed.settings['dhcp-mclt'], printed.sources['dhcp-mclt']], [13, 'file']);
    assert.deepEqual([printed.settings.listen, printed.sources.listen], ['127.0.0.1:9021', 'flag']);
    // dhcp-split: nobody: the default, which is the failover module's own.
    assert.deepEqual(
      [printed.settings['dhcp-split'], printed.sources['dhcp-split']],
      [FAILOVER_DEFAULTS.split, 'default'],
    );
  });

  test('without a file: the defaults are those of the modules that own them', async () => {
    const printed = await printConfig(['--config', file('empty.yaml', '# nothing set\n')]);
    assert.equal(printed.settings['build-timeout-min'], DEFAULT_BUILD_POLICY.buildTimeoutMs / 60_000);
    assert.equal(printed.settings['retry-seconds'], DEFAULT_BUILD_POLICY.retrySeconds);
    assert.equal(printed.settings['dhcp-partner-down-delay'], FAILOVER_DEFAULTS.partnerDownDelayMs / 1000);
    assert.equal(printed.settings['tls-cert'], null);
    assert.ok(Object.values(printed.sources).every((s) => s === 'default'));
  });

  test('KVMFLEET_CONFIG names the file as --config does', async () => {
    const printed = await printConfig([], { KVMFLEET_CONFIG: config });
    assert.equal(printed.file, config);
    assert.equal(printed.settings['dhcp-mclt'], 13);
  });

  test('the text form says where each value came from', async () => {
    const result = await kvmfleet(['serve', '--config', config, '--print-config', '--retry-seconds', '21'], {
      KVMFLEET_BUILD_TIMEOUT_MIN: '32',
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^retry-seconds: 21 # flag$/m);
    assert.match(result.stdout, /^build-timeout-min: 32 # environment KVMFLEET_BUILD_TIMEOUT_MIN$/m);
    assert.match(result.stdout, /^dhcp-mclt: 13 # file$/m);
    assert.match(result.stdout, /^data-dir: \.\/data # default$/m);
    assert.match(result.stdout, /^# tls-cert: \(not set\)$/m);
    // What it prints is itself a configuration file that reads back to the same settings.
    const reread = parseConfigFile('printed', result.stdout);
    assert.equal(reread.values.retrySeconds, 21);
    assert.equal(reread.values.dhcpMclt, 13);
  });
});

describe('--print-config masks secrets', () => {
  test("the database URL's password, from a flag, the environment or the file", async () => {
    const url = 'postgres://kvmfleet:s3cr3t-pw@db.example:5432/kvmfleet?sslmode=require';
    for (const [args, env] of [
      [['--database-url', url], {}],
      [[], { KVMFLEET_DATABASE_URL: url }],
      [['--config', file('db.yaml', `database-url: ${url}\n`)], {}],
    ] as [string[], Record<string, string>][]) {
      for (const json of [true, false]) {
        const result = await kvmfleet([...(json ? ['--json'] : []), 'serve', ...args, '--print-config'], env);
        assert.equal(result.code, 0, result.stderr);
        assert.doesNotMatch(result.stdout + result.stderr, /s3cr3t/);
        assert.match(result.stdout, /postgres:\/\/kvmfleet:\*\*\*@db\.example:5432\/kvmfleet\?sslmode=require/);
      }
    }
  });

  test('mask: user:password@, password= parameters, and passwords with an unencoded / or @', () => {
    const cases: [string, string][] = [
      ['postgres://u:pw@h/db', 'postgres://u:***@h/db'],
      ['postgresql://u@h/db', 'postgresql://u@h/db'],
      ['postgres://h:5432/db', 'postgres://h:5432/db'],
      ['postgres://u:p/w@h/db', 'postgres://u:***@h/db'],
      ['postgres://u:p@w@h/db', 'postgres://u:***@h/db'],
      ['postgres://h/db?user=u&password=pw&sslmode=require', 'postgres://h/db?user=u&password=***&sslmode=require'],
      ['host=h password=pw dbname=db', 'host=h password=*** dbname=db'],
    ];
    for (const [url, masked] of cases) assert.equal(maskUrlPassword(url), masked, url);
  });
});

describe('a configuration file that is wrong is refused with the line', () => {
  const refused = (text: string, pattern: RegExp) => {
    assert.throws(
      () => parseConfigFile('/etc/kvmfleet/kvmfleet.yaml', text),
      (error: unknown) => {
        assert.ok(error instanceof ConfigFileError);
        assert.match(error.message, pattern);
        return true;
      },
    );
  };

  test('an unknown key: its name and line (and a near setting)', () => {
    refused(
      'listen: 127.0.0.1:8080\n\nretry-secs: 3\n',
      /^\/etc\/kvmfleet\/kvmfleet\.yaml:3: unknown setting "retry-secs"/,
    );
    refused('listen: 127.0.0.1:8080\nretry-secs: 3\n', /did you mean "retry-seconds"\?/);
    refused('# comment\nflavour: vanilla\n', /:2: unknown setting "flavour"$/);
    // The file's keys are the flags' names, not the code's.
    refused('dataDir: /srv\n', /:1: unknown setting "dataDir"/);
    refused('config: other.yaml\n', /:1: unknown setting "config"/);
  });

  test('a value of the wrong type says what was wanted', () => {
    refused('site: x\nretry-seconds: thirty\n', /:2: retry-seconds: "thirty" is not a whole number/);
    refused('retry-seconds: [1, 2]\n', /:1: retry-seconds: wants a value, not a list/);
    refused('insecure-http: "yes"\n', /:1: insecure-http: wants true or false/);
    refused('dhcp-mode: half\n', /:1: dhcp-mode: "half" is not one of full, proxy/);
    refused('cpu-overcommit: -2\n', /:1: cpu-overcommit: "-2" is not a positive number/);
    refused('listen: nowhere\n', /:1: listen: --listen wants host:port, not "nowhere"/);
    refused('roles: [api, dns]\n', /:1: roles: unknown role\(s\): dns/);
    refused('data-dir:\n  path: /srv\n', /:2: data-dir: wants a value, not a mapping/);
  });

  test('not a mapping, a duplicate key, a YAML error', () => {
    refused('- listen: 1\n', /:1: wants settings, one "key: value" per line/);
    refused('site: a\nsite: b\n', /:2: .*[Mm]ap keys must be unique/);
    refused('site: "a\n', /kvmfleet\.yaml:\d+: /);
  });

  test('what is right: plain values, lists for list settings, switches as booleans', () => {
    const parsed = parseConfigFile(
      'ok.yaml',
      'roles: [api, http]\ninsecure-http: true\ncpu-overcommit: 2.5\ndata-dir: /srv/kvmfleet\nmirror:\n  - rhel=http://mirror.example/rhel\n',
    );
    assert.deepEqual(parsed.values, {
      roles: 'api,http',
      insecureHttp: true,
      cpuOvercommit: 2.5,
      dataDir: '/srv/kvmfleet',
      mirror: 'rhel=http://mirror.example/rhel',
    });
    assert.deepEqual(parsed.lines, { roles: 1, insecureHttp: 2, cpuOvercommit: 3, dataDir: 4, mirror: 5 });
  });

  test('the binary: a bad file exits 1 with the message, before anything starts', async () => {
    const bad = file('bad.yaml', 'data-dir: ./x\nretry-secs: 3\n');
    const result = await kvmfleet(['serve', '--config', bad]);
    assert.equal(result.code, 1);
    assert.equal(result.stderr.trim(), `error: ${bad}:2: unknown setting "retry-secs" (did you mean "retry-seconds"?)`);
    assert.doesNotMatch(result.stderr, /serving/);
  });
});

describe('which file', () => {
  test('--config with a file that is not there: a clear error', async () => {
    const missing = join(work, 'nowhere.yaml');
    const result = await kvmfleet(['serve', '--config', missing, '--print-config']);
    assert.equal(result.code, 1);
    assert.equal(result.stderr.trim(), `error: ${missing}: no such file`);
  });

  test('the default path is used only when it is there', () => {
    const defaultPath = join(work, 'default', 'kvmfleet.yaml');
    assert.equal(locateConfigFile(undefined, existsSync, defaultPath), undefined);
    assert.equal(locateConfigFile('', existsSync, defaultPath), undefined);
    file('default-present.yaml', 'site: dc1\n');
    const present = join(work, 'default-present.yaml');
    assert.deepEqual(locateConfigFile(undefined, existsSync, present), { path: present, named: false });
    // A named file is read even when it is missing, so that reading it fails and says so.
    assert.deepEqual(locateConfigFile(defaultPath, existsSync, present), { path: defaultPath, named: true });
  });
});

describe('the declaration', () => {
  test('every setting has a help text, an environment name, and is listed by serve --help', async () => {
    const help = await kvmfleet(['serve', '--help']);
    assert.equal(help.code, 0, help.stderr);
    const flat = help.stdout.replace(/\s+/g, ' '); // as wrapped to the terminal's width
    const envs = new Set<string>();
    for (const name of SETTING_NAMES) {
      const setting = settingOf(name);
      assert.ok(setting.help.length > 10, `${name} has a help text`);
      assert.match(envOf(name), /^KVMFLEET_[A-Z0-9_]+$/, `${name} has an environment name`);
      envs.add(envOf(name));
      assert.ok(help.stdout.includes(`--${flagOf(name)}`), `--help lists --${flagOf(name)}`);
      assert.ok(flat.includes(`env: ${envOf(name)})`), `--help lists ${envOf(name)}`);
    }
    assert.equal(envs.size, SETTING_NAMES.length, 'no two settings share an environment variable');
    assert.match(help.stdout, /--config <file>/);
    assert.match(help.stdout, /--print-config/);
  });

  test('the defaults make the ServeOptions serve() takes', () => {
    const options = serveOptionsFrom(defaultSettings());
    assert.deepEqual(options.api, { host: '127.0.0.1', port: 8080, tls: undefined, insecureHttp: false });
    assert.deepEqual(options.roles, ['api', 'http', 'tftp', 'worker']);
    assert.equal(options.policy?.buildTimeoutMs, DEFAULT_BUILD_POLICY.buildTimeoutMs);
    assert.equal(options.dhcp?.failover, undefined);
    assert.throws(
      () => serveOptionsFrom({ ...defaultSettings(), tlsCert: 'c.pem' }),
      /--tls-cert and --tls-key go together/,
    );
  });
});

test('the example in deploy/ is a valid configuration', () => {
  const example = readConfigFile(join(import.meta.dirname, '..', '..', 'deploy', 'kvmfleet.yaml'));
  assert.ok(Object.keys(example.values).length >= 20);
  const options = serveOptionsFrom({ ...defaultSettings(), ...example.values } as ReturnType<typeof defaultSettings>);
  assert.deepEqual(options.roles, ['api', 'http', 'tftp', 'dhcp', 'worker']);
  assert.equal(options.dhcp?.failover?.role, 'primary');
  assert.equal(options.http.mirrors?.get('rhel9'), 'http://mirror.example.internal/rhel9');
});
